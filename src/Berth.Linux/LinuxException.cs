using System.Runtime.InteropServices;

namespace Berth.Linux;

/// <summary>A failed system call, with the operation and the object it was applied to.</summary>
public sealed class LinuxException : Exception
{
    public int Errno { get; }
    public string Operation { get; }
    public string? Subject { get; }

    public LinuxException(string operation, string? subject, int errno)
        : base(Format(operation, subject, errno))
    {
        Errno = errno;
        Operation = operation;
        Subject = subject;
    }

    private static string Format(string op, string? subject, int errno) =>
        subject is null ? $"{op}: {Describe(errno)}" : $"{op} {subject}: {Describe(errno)}";

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno).ToLowerInvariant();

    /// <summary>Throws for the errno of the last P/Invoke.</summary>
    public static LinuxException Last(string operation, string? subject = null) =>
        new(operation, subject, Marshal.GetLastPInvokeError());

    public static void ThrowIfFailed(long rc, string operation, string? subject = null)
    {
        if (rc < 0) throw Last(operation, subject);
    }
}
