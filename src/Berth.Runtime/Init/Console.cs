using System.Text;
using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Sockets;

namespace Berth.Runtime.Init;

/// <summary>
/// process.terminal: a pty from the container's own devpts, its master sent to --console-socket
/// (SCM_RIGHTS, as runc does for conmon and containerd), its slave made the init's stdio and
/// controlling terminal.
/// </summary>
internal static unsafe class ContainerConsole
{
    public static void Setup(InitPlan plan)
    {
        if (!plan.Terminal) return;
        int master = Fd.Open("/dev/ptmx", Consts.O_RDWR | Consts.O_NOCTTY);
        int unlock = 0;
        if (LibC.ioctl(master, Consts.TIOCSPTLCK, &unlock) != 0) throw LinuxException.Last("unlock pty", "/dev/ptmx");
        uint n;
        if (LibC.ioctl(master, Consts.TIOCGPTN, &n) != 0) throw LinuxException.Last("get pty number", "/dev/ptmx");
        var slavePath = $"/dev/pts/{n}";
        int slave = Fd.Open(slavePath, Consts.O_RDWR | Consts.O_NOCTTY);
        if (LibC.fchown(slave, plan.Uid, plan.Gid) != 0) throw LinuxException.Last("chown", slavePath);
        if (plan.Spec.Process?.ConsoleSize is { } size && size.Width > 0 && size.Height > 0)
        {
            var ws = stackalloc ushort[4];
            ws[0] = (ushort)size.Height;
            ws[1] = (ushort)size.Width;
            LibC.ioctl(slave, Consts.TIOCSWINSZ, ws);
        }
        int err = UnixSocket.SendFd(plan.ConsoleSocketFd, master, Encoding.UTF8.GetBytes(slavePath));
        if (err != 0) throw new LinuxException("send pty master to", "--console-socket", err);
        LibC.close(master);
        LibC.close(plan.ConsoleSocketFd);
        for (int i = 0; i < 3; i++) Fd.Dup2(slave, i);
        LibC.close(slave);
        if (LibC.ioctl(0, Consts.TIOCSCTTY, null) != 0) throw LinuxException.Last("set controlling terminal", slavePath);
    }
}
