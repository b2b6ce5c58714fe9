using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Berth.Linux.Interop;

namespace Berth.Linux.Processes;

/// <summary>
/// A tiny static program (a few hundred bytes of x86_64 machine code, no libc) that a container's
/// init executes from a write-sealed memfd once its setup is done, instead of re-executing the whole
/// runtime first (docs/adr/0013). It waits for `start` on the exec fifo, closes it, and executes the
/// user's program. While it waits, and when the kernel resolves /proc/self/exe during that final
/// execve (`#!/proc/self/exe`, binfmt interpreters), the process's executable is the sealed stub, so
/// nothing in the container can reach the runtime binary through it (CVE-2019-5736).
///
/// Its argv is [FIFO-FD, path, args...]: it reads one byte from fd FIFO-FD (decimal), closes it, and
/// runs execve(argv[1], &amp;argv[2], envp). On failure it prints
/// "berth: exec PATH: MESSAGE" to stderr and exits 127, as the runtime's own exec does; when the fifo
/// read fails it exits 1.
/// </summary>
public static unsafe class ExecStub
{
    private const ulong Base = 0x400000;
    private const int HeaderSize = 64, PhdrSize = 56, CodeOffset = HeaderSize + 2 * PhdrSize;
    private const int TableEntries = 128;

    /// <summary>The errors execve(2) documents, whose messages the stub carries; others print a generic one.</summary>
    private static readonly int[] ExecErrors = [1, 2, 5, 7, 8, 11, 12, 13, 14, 20, 21, 22, 23, 24, 26, 36, 40, 80];

    /// <summary>True where the stub exists (x86_64); elsewhere callers re-execute the runtime instead.</summary>
    public static bool Supported => RuntimeInformation.ProcessArchitecture == Architecture.X64;

    /// <summary>
    /// The stub as a write-sealed, close-on-exec memfd.
    /// </summary>
    public static int CreateSealed() => Sealed(Build(), "berth-exec", "exec stub");

    /// <summary>
    /// <paramref name="image"/> in a memfd named <paramref name="name"/>, close-on-exec, sealed against
    /// any write, shrink or growth; executable where the kernel asks for it (MFD_EXEC, 6.3).
    /// </summary>
    internal static int Sealed(byte[] image, string name, string what)
    {
        int fd;
        fixed (byte* n = CString.Of(name))
        {
            fd = LibC.memfd_create(n, SealedExe.MFD_CLOEXEC | SealedExe.MFD_ALLOW_SEALING | SealedExe.MFD_EXEC);
            if (fd < 0) fd = LibC.memfd_create(n, SealedExe.MFD_CLOEXEC | SealedExe.MFD_ALLOW_SEALING); // kernels before 6.3
        }
        if (fd < 0) throw LinuxException.Last("memfd_create", what);
        try
        {
            Files.Fd.WriteAll(fd, image, what);
            if (LibC.fcntl(fd, SealedExe.F_ADD_SEALS, SealedExe.F_SEAL_SEAL | SealedExe.F_SEAL_SHRINK | SealedExe.F_SEAL_GROW | SealedExe.F_SEAL_WRITE) != 0)
                throw LinuxException.Last("seal", what);
        }
        catch
        {
            LibC.close(fd);
            throw;
        }
        return fd;
    }

    /// <summary>
    /// Executes the stub: it reads one byte from <paramref name="fifoFd"/> (which must not be
    /// close-on-exec), closes it and runs <paramref name="path"/>. Returns only on failure (errno).
    /// </summary>
    public static int Exec(int stubFd, int fifoFd, string path, IReadOnlyList<string> args, IReadOnlyList<string> env)
    {
        var argv = new List<string>(args.Count + 2) { fifoFd.ToString(System.Globalization.CultureInfo.InvariantCulture), path };
        argv.AddRange(args);
        using var a = new CStringArray(argv);
        using var e = new CStringArray(env);
        fixed (byte* empty = CString.Of(""))
            LibC.execveat(stubFd, empty, a.Pointer, e.Pointer, Consts.AT_EMPTY_PATH);
        return Marshal.GetLastPInvokeError();
    }

    /// <summary>The ELF image (ET_EXEC at 0x400000: one R+X PT_LOAD holding code and messages, a non-executable stack).</summary>
    public static byte[] Build()
    {
        var code = new Asm();
        // r13 = the fifo fd, parsed from argv[0] (decimal).
        code.Op(0x48, 0x8b, 0x74, 0x24, 0x08);          // mov rsi, [rsp+8]
        code.Op(0x45, 0x31, 0xed);                      // xor r13d, r13d
        code.Label("digits");
        code.Op(0x0f, 0xb6, 0x06);                      // movzx eax, byte [rsi]
        code.Op(0x85, 0xc0);                            // test eax, eax
        code.Op(0x0f, 0x84).Rel32("parsed");            // je parsed
        code.Op(0x45, 0x6b, 0xed, 0x0a);                // imul r13d, r13d, 10
        code.Op(0x45, 0x8d, 0x6c, 0x05, 0xd0);          // lea r13d, [r13+rax-48]
        code.Op(0x48, 0xff, 0xc6);                      // inc rsi
        code.Op(0xe9).Rel32("digits");                  // jmp digits
        code.Label("parsed");
        // read(fifo, rsp-8, 1): blocks until `start` writes; anything but one byte -> exit 1.
        code.Op(0x44, 0x89, 0xef);                      // mov edi, r13d
        code.Op(0x48, 0x8d, 0x74, 0x24, 0xf8);          // lea rsi, [rsp-8]
        code.Op(0xba).I32(1);                           // mov edx, 1
        code.Op(0x31, 0xc0);                            // xor eax, eax (read)
        code.Op(0x0f, 0x05);                            // syscall
        code.Op(0x48, 0x83, 0xf8, 0x01);                // cmp rax, 1
        code.Op(0x0f, 0x85).Rel32("fail_read");         // jne fail_read
        code.Op(0x44, 0x89, 0xef);                      // mov edi, r13d
        code.Op(0xb8).I32(3);                           // mov eax, 3 (close)
        code.Op(0x0f, 0x05);                            // syscall
        // execve(argv[1], &argv[2], envp)
        code.Op(0x48, 0x8b, 0x7c, 0x24, 0x10);          // mov rdi, [rsp+16]
        code.Op(0x48, 0x8d, 0x74, 0x24, 0x18);          // lea rsi, [rsp+24]
        code.Op(0x48, 0x8b, 0x14, 0x24);                // mov rdx, [rsp]          (argc)
        code.Op(0x48, 0x8d, 0x54, 0xd4, 0x10);          // lea rdx, [rsp+rdx*8+16] (envp)
        code.Op(0xb8).I32(59);                          // mov eax, 59 (execve)
        code.Op(0x0f, 0x05);                            // syscall
        // Failed: "berth: exec " PATH ": " MESSAGE "\n" on stderr, exit 127.
        code.Op(0x48, 0xf7, 0xd8);                      // neg rax (errno)
        code.Op(0x49, 0x89, 0xc4);                      // mov r12, rax
        code.Op(0xbf).I32(2);                           // mov edi, 2
        code.Op(0x48, 0xbe).Abs64("prefix");            // movabs rsi, prefix
        code.Op(0xba).Len32("prefix");                  // mov edx, len(prefix)
        code.Op(0xb8).I32(1);                           // mov eax, 1 (write)
        code.Op(0x0f, 0x05);                            // syscall
        code.Op(0x48, 0x8b, 0x74, 0x24, 0x10);          // mov rsi, [rsp+16] (the path)
        code.Op(0x31, 0xd2);                            // xor edx, edx
        code.Label("strlen");
        code.Op(0x80, 0x3c, 0x16, 0x00);                // cmp byte [rsi+rdx], 0
        code.Op(0x0f, 0x84).Rel32("strlen_done");       // je strlen_done
        code.Op(0x48, 0xff, 0xc2);                      // inc rdx
        code.Op(0xe9).Rel32("strlen");                  // jmp strlen
        code.Label("strlen_done");
        code.Op(0xbf).I32(2);                           // mov edi, 2
        code.Op(0xb8).I32(1);                           // mov eax, 1 (write)
        code.Op(0x0f, 0x05);                            // syscall
        code.Op(0x4c, 0x89, 0xe0);                      // mov rax, r12
        code.Op(0x48, 0x3d).I32(TableEntries);          // cmp rax, 128
        code.Op(0x0f, 0x82).Rel32("indexed");           // jb indexed
        code.Op(0x31, 0xc0);                            // xor eax, eax (entry 0: generic)
        code.Label("indexed");
        code.Op(0x48, 0xc1, 0xe0, 0x04);                // shl rax, 4
        code.Op(0x48, 0xb9).Abs64("table");             // movabs rcx, table
        code.Op(0x48, 0x01, 0xc8);                      // add rax, rcx
        code.Op(0x48, 0x8b, 0x30);                      // mov rsi, [rax]
        code.Op(0x48, 0x8b, 0x50, 0x08);                // mov rdx, [rax+8]
        code.Op(0xbf).I32(2);                           // mov edi, 2
        code.Op(0xb8).I32(1);                           // mov eax, 1 (write)
        code.Op(0x0f, 0x05);                            // syscall
        code.Op(0xbf).I32(127);                         // mov edi, 127
        code.Op(0xe9).Rel32("exit");                    // jmp exit
        code.Label("fail_read");
        code.Op(0xbf).I32(1);                           // mov edi, 1
        code.Label("exit");
        code.Op(0xb8).I32(231);                         // mov eax, 231 (exit_group)
        code.Op(0x0f, 0x05);                            // syscall
        code.Op(0x0f, 0x0b);                            // ud2

        // Data after the code: the prefix, the message table (pointer, length per errno), the messages.
        var data = new List<byte>();
        int dataStart = CodeOffset + code.Length;
        void Align16() { while ((dataStart + data.Count) % 16 != 0) data.Add(0); }
        var prefix = Encoding.ASCII.GetBytes("berth: exec ");
        code.Define("prefix", Base + (ulong)(dataStart + data.Count), prefix.Length);
        data.AddRange(prefix);
        Align16();
        int tableAt = dataStart + data.Count;
        code.Define("table", Base + (ulong)tableAt, TableEntries * 16);
        data.AddRange(new byte[TableEntries * 16]);
        var messages = new Dictionary<int, (ulong Addr, int Len)>();
        void AddMessage(int key, string text)
        {
            var bytes = Encoding.UTF8.GetBytes(": " + text + "\n");
            messages[key] = (Base + (ulong)(dataStart + data.Count), bytes.Length);
            data.AddRange(bytes);
        }
        AddMessage(0, "cannot execute");
        foreach (var errno in ExecErrors) AddMessage(errno, LinuxException.Describe(errno));
        var dataArr = data.ToArray();
        for (int i = 0; i < TableEntries; i++)
        {
            var (addr, len) = messages.TryGetValue(i, out var m) ? m : messages[0];
            int at = tableAt - dataStart + i * 16;
            BinaryPrimitives.WriteUInt64LittleEndian(dataArr.AsSpan(at), addr);
            BinaryPrimitives.WriteUInt64LittleEndian(dataArr.AsSpan(at + 8), (ulong)len);
        }

        var codeBytes = code.Link();
        int total = CodeOffset + codeBytes.Length + dataArr.Length;
        var image = new byte[total];
        var h = image.AsSpan();
        // ELF header
        h[0] = 0x7f; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F';
        h[4] = 2; h[5] = 1; h[6] = 1;                                        // 64-bit, little-endian, version 1
        BinaryPrimitives.WriteUInt16LittleEndian(h[16..], 2);                // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], 0x3e);             // EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], 1);                // EV_CURRENT
        BinaryPrimitives.WriteUInt64LittleEndian(h[24..], Base + CodeOffset); // e_entry
        BinaryPrimitives.WriteUInt64LittleEndian(h[32..], HeaderSize);       // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(h[52..], HeaderSize);       // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[54..], PhdrSize);         // e_phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(h[56..], 2);                // e_phnum
        // PT_LOAD, R+X, the whole file at Base
        var p = h[HeaderSize..];
        BinaryPrimitives.WriteUInt32LittleEndian(p, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(p[4..], 5);
        BinaryPrimitives.WriteUInt64LittleEndian(p[16..], Base);
        BinaryPrimitives.WriteUInt64LittleEndian(p[24..], Base);
        BinaryPrimitives.WriteUInt64LittleEndian(p[32..], (ulong)total);
        BinaryPrimitives.WriteUInt64LittleEndian(p[40..], (ulong)total);
        BinaryPrimitives.WriteUInt64LittleEndian(p[48..], 0x1000);
        // PT_GNU_STACK, RW (no executable stack)
        var s = h[(HeaderSize + PhdrSize)..];
        BinaryPrimitives.WriteUInt32LittleEndian(s, 0x6474e551);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], 6);
        BinaryPrimitives.WriteUInt64LittleEndian(s[48..], 16);
        codeBytes.CopyTo(h[CodeOffset..]);
        dataArr.CopyTo(h[(CodeOffset + codeBytes.Length)..]);
        return image;
    }

    /// <summary>Just enough of an assembler: bytes, labels, rel32 jumps, and absolute data addresses fixed up at link.</summary>
    private sealed class Asm
    {
        private readonly List<byte> _b = [];
        private readonly Dictionary<string, int> _labels = [];
        private readonly List<(int At, string Label)> _rel = [];
        private readonly List<(int At, string Symbol, bool Length)> _abs = [];
        private readonly Dictionary<string, (ulong Addr, int Len)> _symbols = [];

        public int Length => _b.Count;
        public Asm Op(params byte[] bytes) { _b.AddRange(bytes); return this; }
        public Asm I32(int v) { Span<byte> t = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(t, v); _b.AddRange(t.ToArray()); return this; }
        public Asm Rel32(string label) { _rel.Add((_b.Count, label)); return I32(0); }
        public Asm Abs64(string symbol) { _abs.Add((_b.Count, symbol, false)); _b.AddRange(new byte[8]); return this; }
        public Asm Len32(string symbol) { _abs.Add((_b.Count, symbol, true)); return I32(0); }
        public void Label(string name) => _labels[name] = _b.Count;
        public void Define(string name, ulong addr, int len) => _symbols[name] = (addr, len);

        public byte[] Link()
        {
            var bytes = _b.ToArray();
            foreach (var (at, label) in _rel)
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), _labels[label] - (at + 4));
            foreach (var (at, symbol, length) in _abs)
            {
                var (addr, len) = _symbols[symbol];
                if (length) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), len);
                else BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), addr);
            }
            return bytes;
        }
    }
}
