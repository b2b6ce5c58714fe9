using System.Runtime.CompilerServices;
using Berth.Linux.Seccomp;

namespace Berth.Linux.Tests.Seccomp;

public class SyscallTableTests
{
    [Theory]
    [InlineData(SeccompArch.X86_64, "read", 0)]
    [InlineData(SeccompArch.X86_64, "openat", 257)]
    [InlineData(SeccompArch.X86_64, "seccomp", 317)]
    [InlineData(SeccompArch.X86_64, "clone3", 435)]
    [InlineData(SeccompArch.X86_64, "newfstatat", 262)]
    [InlineData(SeccompArch.X86, "read", 3)]
    [InlineData(SeccompArch.X86, "socketcall", 102)]
    [InlineData(SeccompArch.X86, "_llseek", 140)]
    [InlineData(SeccompArch.X32, "read", 0x40000000)]
    [InlineData(SeccompArch.X32, "rt_sigaction", 0x40000000 + 512)]
    [InlineData(SeccompArch.Aarch64, "openat", 56)]
    [InlineData(SeccompArch.Aarch64, "seccomp", 277)]
    [InlineData(SeccompArch.Aarch64, "fstat", 80)]
    [InlineData(SeccompArch.Aarch64, "renameat", 38)]
    public void KnownNumbers(SeccompArch arch, string name, int nr) => Assert.Equal(nr, SyscallTable.Resolve(arch, name));

    [Theory]
    [InlineData(SeccompArch.X86_64, "no_such_call")]
    [InlineData(SeccompArch.X86_64, "_llseek")]
    [InlineData(SeccompArch.Aarch64, "open")]
    [InlineData(SeccompArch.Aarch64, "syscalls")]
    [InlineData(SeccompArch.Arm, "read")]
    public void UnknownNames(SeccompArch arch, string name) => Assert.Equal(-1, SyscallTable.Resolve(arch, name));

    [Fact]
    public void TheRunningProcessAgreesWithTheInteropNumbers()
    {
        var native = SeccompArchInfo.Native!.Value;
        Assert.Equal(Interop.Syscalls.Seccomp, SyscallTable.Resolve(native, "seccomp"));
        Assert.Equal(Interop.Syscalls.PivotRoot, SyscallTable.Resolve(native, "pivot_root"));
        Assert.Equal(Interop.Syscalls.Gettid, SyscallTable.Resolve(native, "gettid"));
    }

    [Fact]
    public void SockFilterIsEightBytes() => Assert.Equal(8, Unsafe.SizeOf<SockFilter>());

    [Fact]
    public void LoaderRefusesEmptyAndOversizedProgramsWithoutCallingTheKernel()
    {
        Assert.Equal(Interop.Consts.EINVAL, SeccompLoader.TryLoad([], 0, out int fd));
        Assert.Equal(-1, fd);
        Assert.Equal(Interop.Consts.EINVAL, SeccompLoader.TryLoad(new SockFilter[Bpf.MaxInstructions + 1], 0, out _));
    }
}
