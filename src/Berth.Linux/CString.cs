using System.Text;

namespace Berth.Linux;

/// <summary>NUL-terminated UTF-8 strings and string arrays for libc calls.</summary>
public static unsafe class CString
{
    public static byte[] Of(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    public static string Read(byte* p)
    {
        if (p == null) return "";
        int n = 0;
        while (p[n] != 0) n++;
        return Encoding.UTF8.GetString(p, n);
    }
}

/// <summary>
/// A NULL-terminated array of C strings in unmanaged memory (argv/envp for execve).
/// Kept in native memory so it survives until execve without pinning.
/// </summary>
public sealed unsafe class CStringArray : IDisposable
{
    public byte** Pointer { get; private set; }
    private readonly int _count;

    public CStringArray(IReadOnlyList<string> items)
    {
        _count = items.Count;
        Pointer = (byte**)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)(_count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < _count; i++)
        {
            var bytes = CString.Of(items[i]);
            var mem = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)bytes.Length);
            bytes.CopyTo(new Span<byte>(mem, bytes.Length));
            Pointer[i] = mem;
        }
    }

    public void Dispose()
    {
        if (Pointer == null) return;
        for (int i = 0; i < _count; i++) System.Runtime.InteropServices.NativeMemory.Free(Pointer[i]);
        System.Runtime.InteropServices.NativeMemory.Free(Pointer);
        Pointer = null;
    }
}
