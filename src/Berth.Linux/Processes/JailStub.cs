using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Processes;

/// <summary>
/// A jail built by a list of system calls instead of by a fork of berth (docs/adr/0016).
///
/// <see cref="JailProgram"/> collects steps (a system call with up to six arguments, each a
/// value or read from an address of the program's data; a fork; the reaper) and the data they
/// point to, and links them with a fixed interpreter (<c>JailStub.s</c>, 512 bytes of x86_64
/// machine code, no libc) into a small static ELF image. That image, run from a write-sealed
/// memfd, executes the steps in order. A step that fails (unless marked <c>mayFail</c>) makes the
/// process write a 16-byte record {1, step, errno, 0} to the error fd and exit 127, so the caller
/// can say which step failed and why. Nothing of berth's own (.NET) code or memory is in the
/// jail: the jail's processes are the stub and the program it finally execs.
/// </summary>
public static class JailStub
{
    /// <summary>Where the data segment (header, blobs, steps) is mapped.</summary>
    public const ulong DataBase = 0x601000;
    internal const ulong CodeBase = 0x400000;
    internal const int StepSize = 72;
    internal const int HeaderSize = 64, PhdrSize = 56, CodeOffset = HeaderSize + 3 * PhdrSize, DataOffset = 0x1000;

    /// <summary>Step flags: bit i (0-5) reads argument i from the address it holds; bit 8: a failure is stored, not fatal.</summary>
    internal const ulong MayFail = 0x100;
    internal const long OpFork = -1, OpReap = -2;

    /// <summary>Record types on the error fd / status fd.</summary>
    public const int RecordError = 1;
    /// <summary>The reaper's record: {raw wait status, orphans, main exited (0/1), magic}.</summary>
    public const uint ReaperMagic = 0x4854524a;

    /// <summary>True where the interpreter exists (x86_64).</summary>
    public static bool Supported => RuntimeInformation.ProcessArchitecture == Architecture.X64;

    /// <summary>The interpreter, assembled from JailStub.s (the unit tests re-assemble it and compare).</summary>
    public static ReadOnlySpan<byte> Code =>
    [
        0x48, 0x8b, 0x1c, 0x25, 0x00, 0x10, 0x60, 0x00, 0x45, 0x31, 0xe4, 0x4c, 0x3b, 0x24, 0x25, 0x08,
        0x10, 0x60, 0x00, 0x0f, 0x83, 0x95, 0x01, 0x00, 0x00, 0x49, 0x6b, 0xec, 0x48, 0x48, 0x01, 0xdd,
        0x48, 0x8b, 0x4d, 0x08, 0x48, 0x8b, 0x7d, 0x18, 0xf6, 0xc1, 0x01, 0x74, 0x03, 0x48, 0x8b, 0x3f,
        0x48, 0x8b, 0x75, 0x20, 0xf6, 0xc1, 0x02, 0x74, 0x03, 0x48, 0x8b, 0x36, 0x48, 0x8b, 0x55, 0x28,
        0xf6, 0xc1, 0x04, 0x74, 0x03, 0x48, 0x8b, 0x12, 0x4c, 0x8b, 0x55, 0x30, 0xf6, 0xc1, 0x08, 0x74,
        0x03, 0x4d, 0x8b, 0x12, 0x4c, 0x8b, 0x45, 0x38, 0xf6, 0xc1, 0x10, 0x74, 0x03, 0x4d, 0x8b, 0x00,
        0x4c, 0x8b, 0x4d, 0x40, 0xf6, 0xc1, 0x20, 0x74, 0x03, 0x4d, 0x8b, 0x09, 0x48, 0x8b, 0x45, 0x00,
        0x48, 0x83, 0xf8, 0xff, 0x74, 0x2f, 0x48, 0x83, 0xf8, 0xfe, 0x74, 0x68, 0x0f, 0x05, 0x48, 0x3d,
        0x01, 0xf0, 0xff, 0xff, 0x73, 0x14, 0x48, 0x8b, 0x55, 0x10, 0x48, 0x85, 0xd2, 0x74, 0x03, 0x48,
        0x89, 0x02, 0x49, 0xff, 0xc4, 0xe9, 0x71, 0xff, 0xff, 0xff, 0xf6, 0x45, 0x09, 0x01, 0x75, 0xe6,
        0xe9, 0x17, 0x01, 0x00, 0x00, 0xb8, 0x38, 0x00, 0x00, 0x00, 0x31, 0xf6, 0x31, 0xd2, 0x45, 0x31,
        0xd2, 0x45, 0x31, 0xc0, 0x0f, 0x05, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x0f, 0x83, 0xfa, 0x00,
        0x00, 0x00, 0x48, 0x8b, 0x55, 0x10, 0x48, 0x85, 0xd2, 0x74, 0x03, 0x48, 0x89, 0x02, 0x48, 0x85,
        0xc0, 0x74, 0x09, 0x4c, 0x8b, 0x65, 0x20, 0xe9, 0x2f, 0xff, 0xff, 0xff, 0x49, 0xff, 0xc4, 0xe9,
        0x27, 0xff, 0xff, 0xff, 0x49, 0x89, 0xfd, 0x49, 0x89, 0xf6, 0x45, 0x31, 0xff, 0x31, 0xdb, 0xb8,
        0x27, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x89, 0xc5, 0x48, 0x83, 0xf8, 0x01, 0x74, 0x13, 0xb8,
        0x6e, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x31, 0xed, 0x48, 0x85, 0xc0, 0x75, 0x05, 0xbd, 0x01, 0x00,
        0x00, 0x00, 0x48, 0x83, 0xec, 0x20, 0x48, 0xc7, 0x04, 0x24, 0x00, 0x00, 0x00, 0x00, 0xb8, 0x3d,
        0x00, 0x00, 0x00, 0x48, 0xc7, 0xc7, 0xff, 0xff, 0xff, 0xff, 0x48, 0x8d, 0x74, 0x24, 0x08, 0xba,
        0x00, 0x00, 0x00, 0x40, 0x45, 0x31, 0xd2, 0x0f, 0x05, 0x48, 0x83, 0xf8, 0xfc, 0x74, 0xdf, 0x48,
        0x85, 0xc0, 0x78, 0x36, 0x4c, 0x39, 0xe8, 0x75, 0x28, 0x8b, 0x44, 0x24, 0x08, 0x89, 0x04, 0x24,
        0x41, 0xbf, 0x01, 0x00, 0x00, 0x00, 0x48, 0x83, 0xfd, 0x01, 0x75, 0xc2, 0xb8, 0x3e, 0x00, 0x00,
        0x00, 0x48, 0xc7, 0xc7, 0xff, 0xff, 0xff, 0xff, 0xbe, 0x09, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb,
        0xad, 0x45, 0x85, 0xff, 0x74, 0xa8, 0xff, 0xc3, 0xeb, 0xa4, 0x89, 0x5c, 0x24, 0x04, 0x44, 0x89,
        0x7c, 0x24, 0x08, 0xc7, 0x44, 0x24, 0x0c, 0x4a, 0x52, 0x54, 0x48, 0xb8, 0x01, 0x00, 0x00, 0x00,
        0x4c, 0x89, 0xf7, 0x48, 0x89, 0xe6, 0xba, 0x10, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x01, 0x00,
        0x00, 0x00, 0x44, 0x29, 0xff, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x0f, 0x0b, 0xbf, 0x7e,
        0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x0f, 0x0b, 0x48, 0xf7, 0xd8, 0x48,
        0x83, 0xec, 0x10, 0xc7, 0x04, 0x24, 0x01, 0x00, 0x00, 0x00, 0x44, 0x89, 0x64, 0x24, 0x04, 0x89,
        0x44, 0x24, 0x08, 0xc7, 0x44, 0x24, 0x0c, 0x00, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00,
        0x48, 0x8b, 0x3c, 0x25, 0x10, 0x10, 0x60, 0x00, 0x48, 0x89, 0xe6, 0xba, 0x10, 0x00, 0x00, 0x00,
        0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x0f, 0x0b,
    ];
}

/// <summary>An argument of a step: a value, or the 8 bytes at an address of the program's data (a stored result).</summary>
public readonly record struct JailArg(ulong Value, bool Deref)
{
    public static implicit operator JailArg(long v) => new((ulong)v, false);
    public static implicit operator JailArg(ulong v) => new(v, false);
    public static implicit operator JailArg(int v) => new((ulong)(long)v, false);
    public static implicit operator JailArg(uint v) => new(v, false);
    /// <summary>The value stored at <paramref name="address"/> when the step runs.</summary>
    public static JailArg At(ulong address) => new(address, true);
}

/// <summary>Builds the steps and data of one jail program and links it (see <see cref="JailStub"/>).</summary>
public sealed class JailProgram
{
    // The data segment as it grows (zeroed past _len: Zeros only advances). One buffer, no copies per
    // string: a container's program has some 400 steps and strings, compiled on every `create`.
    private byte[] _data = new byte[16384];
    private int _len;
    private readonly List<(long Nr, ulong Flags, ulong Store, JailArg[] Args)> _steps = [];
    private readonly List<string> _what = [];

    /// <summary>The fd failure records are written to.</summary>
    public int ErrorFd { get; set; } = 2;

    /// <summary>What the caller writes to the program's go fd to let it go on (a job's exec paths; see StubJail), or null when it has none.</summary>
    public byte[]? Go { get; set; }

    public JailProgram()
    {
        _len = 24; // header: steps address, step count, error fd
    }

    public int Count => _steps.Count;

    /// <summary>What step <paramref name="index"/> does, for error messages.</summary>
    public string Describe(int index) => index >= 0 && index < _what.Count ? _what[index] : $"step {index}";

    /// <summary>Step <paramref name="index"/>: its system call number (or operation) and six arguments; for checks and tests.</summary>
    public (long Nr, IReadOnlyList<JailArg> Args) Step(int index) => (_steps[index].Nr, _steps[index].Args);

    /// <summary>The NUL-terminated string at a data address, or null when the address is outside the data; for checks and tests.</summary>
    public string? StringAt(ulong address)
    {
        if (address < JailStub.DataBase || address >= JailStub.DataBase + (ulong)_len) return null;
        int at = (int)(address - JailStub.DataBase);
        int end = Array.IndexOf(_data, (byte)0, at, _len - at);
        return end < 0 ? null : Encoding.UTF8.GetString(_data, at, end - at);
    }

    /// <summary>Bytes into the data segment (8-aligned); their address.</summary>
    public ulong Bytes(ReadOnlySpan<byte> bytes)
    {
        int at = Reserve(bytes.Length);
        bytes.CopyTo(_data.AsSpan(at));
        return JailStub.DataBase + (ulong)at;
    }

    /// <summary>A NUL-terminated string; its address.</summary>
    public ulong Str(string s)
    {
        if (s.Contains('\0')) throw new ArgumentException($"NUL byte in \"{s}\"");
        int at = Reserve(Encoding.UTF8.GetByteCount(s) + 1);
        Encoding.UTF8.GetBytes(s, _data.AsSpan(at)); // the NUL is there: the buffer is zero past _len
        return JailStub.DataBase + (ulong)at;
    }

    /// <summary>A NULL-terminated array of string pointers (argv, envp); its address.</summary>
    public ulong StrArray(IEnumerable<string> items)
    {
        var ptrs = items.Select(Str).ToList();
        var arr = new byte[(ptrs.Count + 1) * 8];
        for (int i = 0; i < ptrs.Count; i++) BinaryPrimitives.WriteUInt64LittleEndian(arr.AsSpan(i * 8), ptrs[i]);
        return Bytes(arr);
    }

    /// <summary><paramref name="size"/> zero bytes; their address.</summary>
    public ulong Zeros(int size) => JailStub.DataBase + (ulong)Reserve(size);

    /// <summary>Room for <paramref name="size"/> zero bytes at an 8-aligned offset of the data; the offset.</summary>
    private int Reserve(int size)
    {
        int at = (_len + 7) & ~7;
        if (at + size > _data.Length) Array.Resize(ref _data, Math.Max(_data.Length * 2, at + size + 1024));
        _len = at + size;
        return at;
    }

    /// <summary>Overwrites data at an address returned earlier (e.g. a pointer into another blob).</summary>
    public void Patch(ulong address, ReadOnlySpan<byte> bytes)
    {
        int at = checked((int)(address - JailStub.DataBase));
        if (at + bytes.Length > _len) throw new ArgumentOutOfRangeException(nameof(address));
        bytes.CopyTo(_data.AsSpan(at));
    }

    /// <summary>A system call; its result (8 bytes) goes to <paramref name="store"/> when non-zero. Returns the step's index.</summary>
    public int Call(string what, long nr, JailArg[] args, ulong store = 0, bool mayFail = false)
    {
        if (nr < 0) throw new ArgumentOutOfRangeException(nameof(nr));
        return Add(what, nr, args, store, mayFail);
    }

    public int Call(string what, long nr, params JailArg[] args) => Add(what, nr, args, 0, false);

    /// <summary>
    /// clone(<paramref name="cloneFlags"/>) without a new stack: the child goes on with the next step,
    /// the parent with step <paramref name="parentStep"/> (fill in later with <see cref="SetParentStep"/>).
    /// The child's pid is stored (in the parent) at <paramref name="store"/> when non-zero.
    /// </summary>
    public int Fork(string what, ulong cloneFlags, ulong store = 0, int parentStep = -1) =>
        Add(what, JailStub.OpFork, [cloneFlags, (long)parentStep], store, false);

    public void SetParentStep(int forkStep, int parentStep)
    {
        var s = _steps[forkStep];
        if (s.Nr != JailStub.OpFork) throw new ArgumentException($"step {forkStep} is not a fork");
        s.Args[1] = (long)parentStep;
    }

    /// <summary>
    /// The reaper (the last step of a pid namespace's init, or of a subreaper whose parent is outside
    /// the namespace): waits for every child; when the main one (pid read from <paramref name="mainPid"/>)
    /// exits it SIGKILLs every other process of the namespace it may signal (kill -1; never outside a
    /// pid namespace), reaps them, counting them as orphans, writes its 16-byte record
    /// {raw status, orphans, main exited, <see cref="JailStub.ReaperMagic"/>} to <paramref name="statusFd"/>
    /// and exits (0, or 1 when the main process was never seen).
    /// </summary>
    public int Reap(JailArg mainPid, int statusFd) => Add("reap", JailStub.OpReap, [mainPid, statusFd], 0, false);

    private int Add(string what, long nr, JailArg[] args, ulong store, bool mayFail)
    {
        if (args.Length > 6) throw new ArgumentException("at most six arguments");
        var a = new JailArg[6];
        args.CopyTo(a, 0);
        ulong flags = mayFail ? JailStub.MayFail : 0;
        for (int i = 0; i < 6; i++) if (a[i].Deref) flags |= 1UL << i;
        _steps.Add((nr, flags, store, a));
        _what.Add(what);
        return _steps.Count - 1;
    }

    /// <summary>The ELF image: code (R+X) at 0x400000, data (R+W) at <see cref="JailStub.DataBase"/>, no executable stack.</summary>
    public byte[] Build()
    {
        int stepsOffset = (_len + 7) & ~7;
        int dataLength = stepsOffset + _steps.Count * JailStub.StepSize;
        var code = JailStub.Code;
        int codeEnd = JailStub.CodeOffset + code.Length;
        if (codeEnd > JailStub.DataOffset) throw new InvalidOperationException("jail stub: code overlaps data");
        var image = new byte[JailStub.DataOffset + dataLength];
        var h = image.AsSpan();
        var d = h.Slice(JailStub.DataOffset, dataLength);
        _data.AsSpan(0, _len).CopyTo(d);
        BinaryPrimitives.WriteUInt64LittleEndian(d, JailStub.DataBase + (ulong)stepsOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(d[8..], (ulong)_steps.Count);
        BinaryPrimitives.WriteInt64LittleEndian(d[16..], ErrorFd);
        var s = d[stepsOffset..];
        foreach (var (nr, flags, store, args) in _steps)
        {
            BinaryPrimitives.WriteInt64LittleEndian(s, nr);
            BinaryPrimitives.WriteUInt64LittleEndian(s[8..], flags);
            BinaryPrimitives.WriteUInt64LittleEndian(s[16..], store);
            for (int i = 0; i < 6; i++) BinaryPrimitives.WriteUInt64LittleEndian(s[(24 + 8 * i)..], args[i].Value);
            s = s[JailStub.StepSize..];
        }

        h[0] = 0x7f; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F';
        h[4] = 2; h[5] = 1; h[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], 2);       // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], 0x3e);    // EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], JailStub.CodeBase + (ulong)JailStub.CodeOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], JailStub.HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[52..], JailStub.HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[54..], JailStub.PhdrSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[56..], 3);
        static void Phdr(Span<byte> h, int i, uint type, uint flags, ulong offset, ulong vaddr, ulong size, ulong align)
        {
            var p = h[(JailStub.HeaderSize + i * JailStub.PhdrSize)..];
            BinaryPrimitives.WriteUInt32LittleEndian(p, type);
            BinaryPrimitives.WriteUInt32LittleEndian(p[4..], flags);
            BinaryPrimitives.WriteUInt64LittleEndian(p[8..], offset);
            BinaryPrimitives.WriteUInt64LittleEndian(p[16..], vaddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[24..], vaddr);
            BinaryPrimitives.WriteUInt64LittleEndian(p[32..], size);
            BinaryPrimitives.WriteUInt64LittleEndian(p[40..], size);
            BinaryPrimitives.WriteUInt64LittleEndian(p[48..], align);
        }
        Phdr(h, 0, 1, 5, 0, JailStub.CodeBase, (ulong)codeEnd, 0x1000);                                   // PT_LOAD R+X
        Phdr(h, 1, 1, 6, JailStub.DataOffset, JailStub.DataBase, (ulong)dataLength, 0x1000);               // PT_LOAD R+W
        Phdr(h, 2, 0x6474e551, 6, 0, 0, 0, 16);                                                            // PT_GNU_STACK RW
        code.CopyTo(h[JailStub.CodeOffset..]);
        return image;
    }

    /// <summary>
    /// Runs the sealed image <paramref name="memfd"/> with posix_spawn (clone with CLONE_VM|CLONE_VFORK:
    /// nothing of this process's memory is copied), with <paramref name="fds"/> dup2'd to the fd
    /// numbers the steps use (every other fd of berth is close-on-exec). Returns the child's pid.
    /// </summary>
    public static int Spawn(int memfd, IReadOnlyList<(int From, int To)> fds, string argv0 = "berth-jail")
    {
        // The image's own fd must survive the dup2s (it may sit on one of their targets).
        int image = High(memfd);
        try { return Proc.SpawnWithFds($"/proc/self/fd/{image}", [argv0], [], fds); }
        finally { LibC.close(image); }
    }

    /// <summary>A close-on-exec duplicate of <paramref name="fd"/> numbered 64 or above (a Spawn source).</summary>
    public static int High(int fd)
    {
        int r = LibC.fcntl(fd, 1030 /* F_DUPFD_CLOEXEC */, 64);
        if (r < 0) throw LinuxException.Last("fcntl(F_DUPFD_CLOEXEC)", fd.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return r;
    }

    /// <summary>The image in a write-sealed, close-on-exec memfd.</summary>
    public int Seal() => SealImage(Build());

    /// <summary>An image <see cref="Build"/> made (perhaps in another process, kept by the caller) in a write-sealed, close-on-exec memfd.</summary>
    public static int SealImage(byte[] image) => ExecStub.Sealed(image, "berth-jail", "jail stub");

    /// <summary>What every step does, in order (<see cref="Describe"/> of each).</summary>
    public string[] Descriptions() => [.. _what];
}
