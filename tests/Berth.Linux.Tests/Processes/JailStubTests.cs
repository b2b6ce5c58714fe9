using System.Buffers.Binary;
using System.Diagnostics;
using Berth.Linux.Interop;
using Berth.Linux.Processes;

namespace Berth.Linux.Tests.Processes;

/// <summary>
/// The jail stub's interpreter run for real (no root needed): programs of plain system calls,
/// forks, the reaper and failure records, read back through a pipe on the stub's fd 1.
/// </summary>
public sealed class JailStubTests
{
    private const long Write = 1, Open = 2, Prctl = 157, ExitGroup = 231, Execve = 59, Getpid = 39;
    private const ulong SIGCHLD = 17;

    /// <summary>Runs the program with a pipe as fd 1; returns (exit status, everything written to fd 1).</summary>
    private static unsafe (int Exit, byte[] Out) Run(JailProgram prog)
    {
        int memfd = prog.Seal();
        var (r, w) = Files.Fd.Pipe();
        int wHigh = JailProgram.High(w);
        Files.Fd.Close(w);
        int pid;
        try { pid = JailProgram.Spawn(memfd, [(wHigh, 1)]); }
        finally { Files.Fd.Close(wHigh); Files.Fd.Close(memfd); }
        var output = new List<byte>();
        var buf = new byte[4096];
        int n;
        while ((n = Files.Fd.Read(r, buf)) > 0) output.AddRange(buf.AsSpan(0, n).ToArray());
        Files.Fd.Close(r);
        var st = Proc.Wait(pid)!.Value;
        return (st.Code, output.ToArray());
    }

    [Fact]
    public void Steps_run_in_order_and_the_reaper_reports_the_main_child()
    {
        var p = new JailProgram { ErrorFd = 1 };
        ulong hello = p.Str("a\n");
        ulong pidSlot = p.Zeros(8);
        p.Call("write", Write, 1, (long)hello, 2);
        p.Call("subreaper", Prctl, 36 /* PR_SET_CHILD_SUBREAPER */, 1);
        int fork = p.Fork("fork", SIGCHLD, pidSlot);
        p.Call("exec", Execve, (long)p.Str("/bin/sh"), (long)p.StrArray(["sh", "-c", "echo child; exit 7"]), (long)p.StrArray([]));
        p.SetParentStep(fork, p.Count);
        p.Reap(JailArg.At(pidSlot), 1);
        var (exit, output) = Run(p);
        Assert.Equal(0, exit);
        Assert.Equal("a\nchild\n", System.Text.Encoding.ASCII.GetString(output[..^16]));
        var rec = output[^16..];
        Assert.Equal(7 << 8, BinaryPrimitives.ReadInt32LittleEndian(rec));      // raw wait status: exit 7
        Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(rec.AsSpan(4))); // orphans
        Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(rec.AsSpan(8))); // main seen
        Assert.Equal(JailStub.ReaperMagic, BinaryPrimitives.ReadUInt32LittleEndian(rec.AsSpan(12)));
    }

    [Fact]
    public void Outside_a_pid_namespace_the_reaper_counts_orphans_but_kills_nothing()
    {
        // The stub is a subreaper, not PID 1 of a namespace: the orphan must survive the main child
        // (kill -1 would reach every process of the user) and is reaped, uncounted or counted, when it ends.
        var marker = Path.Combine(Path.GetTempPath(), $"berth-jailstub-{Guid.NewGuid():N}");
        var p = new JailProgram { ErrorFd = 1 };
        ulong pidSlot = p.Zeros(8);
        p.Call("subreaper", Prctl, 36, 1);
        int fork = p.Fork("fork", SIGCHLD, pidSlot);
        p.Call("exec", Execve, (long)p.Str("/bin/sh"),
            (long)p.StrArray(["sh", "-c", $"(sleep 0.3; touch {marker}) >/dev/null 2>&1 & exit 0"]), (long)p.StrArray([]));
        p.SetParentStep(fork, p.Count);
        p.Reap(JailArg.At(pidSlot), 1);
        var (exit, output) = Run(p);
        try
        {
            Assert.Equal(0, exit);
            Assert.True(File.Exists(marker), "the orphan was killed outside a pid namespace");
            Assert.Equal(16, output.Length);
            Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(output));
            Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(output.AsSpan(4))); // the sleeper, reaped after the main child
        }
        finally { File.Delete(marker); }
    }

    [Fact]
    public void A_failing_step_writes_its_index_and_errno_and_exits_127()
    {
        var p = new JailProgram { ErrorFd = 1 };
        p.Call("getpid", Getpid);
        p.Call("open /nonexistent", Open, (long)p.Str("/nonexistent/berth"), 0);
        p.Call("exit", ExitGroup, 0);
        var (exit, output) = Run(p);
        Assert.Equal(127, exit);
        Assert.Equal(16, output.Length);
        Assert.Equal(JailStub.RecordError, BinaryPrimitives.ReadInt32LittleEndian(output));
        Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(output.AsSpan(4)));
        Assert.Equal(Consts.ENOENT, BinaryPrimitives.ReadInt32LittleEndian(output.AsSpan(8)));
        Assert.Equal("open /nonexistent", p.Describe(1));
    }

    [Fact]
    public void A_step_that_may_fail_stores_the_negative_errno_and_goes_on()
    {
        var p = new JailProgram { ErrorFd = 1 };
        ulong slot = p.Zeros(8);
        p.Call("open", Open, [(long)p.Str("/nonexistent/berth"), 0], store: slot, mayFail: true);
        p.Call("write the stored result", Write, 1, (long)slot, 8);
        p.Call("exit", ExitGroup, 5);
        var (exit, output) = Run(p);
        Assert.Equal(5, exit);
        Assert.Equal(-Consts.ENOENT, BinaryPrimitives.ReadInt64LittleEndian(output));
    }

    [Fact]
    public void The_embedded_code_is_JailStub_s_assembled()
    {
        var src = FindRepoFile("src/Berth.Linux/Processes/JailStub.s");
        var dir = Directory.CreateTempSubdirectory("berth-jailstub-").FullName;
        try
        {
            Sh("as", "--64", "-o", Path.Combine(dir, "j.o"), src);
            Sh("objcopy", "-O", "binary", "-j", ".text", Path.Combine(dir, "j.o"), Path.Combine(dir, "j.bin"));
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "j.bin")), JailStub.Code.ToArray());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static void Sh(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file}: {err}");
    }

    private static string FindRepoFile(string rel)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, rel))) return Path.Combine(d.FullName, rel);
        throw new FileNotFoundException(rel);
    }
}
