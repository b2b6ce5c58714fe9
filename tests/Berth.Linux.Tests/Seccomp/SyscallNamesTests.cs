using Berth.Linux.Seccomp;

namespace Berth.Linux.Tests.Seccomp;

/// <summary>The generated number -> name tables (audit log) against the name -> number ones.</summary>
public class SyscallNamesTests
{
    [Theory]
    [InlineData(SeccompArch.X86_64)]
    [InlineData(SeccompArch.X86)]
    [InlineData(SeccompArch.Aarch64)]
    public void Every_name_maps_back_from_its_number(SeccompArch arch)
    {
        var names = SyscallTable.Names(arch).ToList();
        Assert.True(names.Count > 250, $"{arch}: only {names.Count} names");
        foreach (var name in names)
        {
            int nr = SyscallTable.Resolve(arch, name);
            Assert.True(nr >= 0, $"{arch} {name}");
            Assert.Equal(name, SyscallTable.Name(arch, nr));
        }
    }

    [Fact]
    public void Known_numbers_and_unknown_ones()
    {
        Assert.Equal("ptrace", SyscallTable.Name(SeccompArch.X86_64, 101));
        Assert.Equal("io_uring_setup", SyscallTable.Name(SeccompArch.X86_64, 425));
        Assert.Equal("ptrace", SyscallTable.Name(SeccompArch.X86, 26));
        Assert.Equal("ptrace", SyscallTable.Name(SeccompArch.Aarch64, 117));
        Assert.Equal("read", SyscallTable.Name(SeccompArch.X32, 0 | (int)SeccompAbi.X32_SYSCALL_BIT));
        Assert.Null(SyscallTable.Name(SeccompArch.X32, 0)); // an x32 number always has the bit
        Assert.Null(SyscallTable.Name(SeccompArch.X86_64, 100_000));
        Assert.Null(SyscallTable.Name(SeccompArch.X86_64, -1));
        Assert.Equal(SeccompArch.X32, SyscallTable.ArchOf(SeccompAbi.AUDIT_ARCH_X86_64, 0x40000001));
        Assert.Equal(SeccompArch.X86_64, SyscallTable.ArchOf(SeccompAbi.AUDIT_ARCH_X86_64, 1));
        Assert.Null(SyscallTable.ArchOf(0x1234, 1));
    }
}
