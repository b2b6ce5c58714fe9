using System.Text;
using Berth.Engine.Containers;
using Berth.Linux.Files;
using Berth.Linux.Processes;

namespace Berth.Engine.Network;

/// <summary>
/// Runs `nft -f -` with a script on stdin (one atomic transaction). A process, not nf_tables
/// netlink: the rule language is nft's, and only port publishing and the first bridge setup pay for it.
/// Forks from the main thread like the runtime's hooks (docs/adr/0002).
/// </summary>
public static class Nft
{
    private static readonly string[] Candidates = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];

    public static string? Path => Candidates.FirstOrDefault(File.Exists);

    /// <summary>Returns null on success, else nft's error text.</summary>
    public static string? TryRun(string script)
    {
        var nft = Path ?? throw new EngineError("bridge networking needs nft (Debian package nftables), which is not installed");
        var (inR, inW) = Fd.Pipe();
        var (errR, errW) = Fd.Pipe();
        int pid = Proc.Fork();
        if (pid == 0)
        {
            try
            {
                Fd.Dup2(inR, 0);
                Fd.Dup2(errW, 1);
                Fd.Dup2(errW, 2);
                Fd.CloexecFrom(3);
                Proc.Exec(nft, [nft, "-f", "-"], ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
            }
            catch (Exception) { }
            Proc.Exit(127);
        }
        Fd.Close(inR);
        Fd.Close(errW);
        try { Fd.WriteAll(inW, Encoding.UTF8.GetBytes(script), "nft stdin"); }
        catch (Berth.Linux.LinuxException) { }
        Fd.Close(inW);
        var output = new MemoryStream();
        var buf = new byte[4096];
        while (true)
        {
            int n = Fd.Read(errR, buf);
            if (n <= 0) break;
            output.Write(buf, 0, n);
        }
        Fd.Close(errR);
        var status = Proc.Wait(pid);
        if (status is { Code: 0, Signal: 0 }) return null;
        var text = Encoding.UTF8.GetString(output.ToArray()).Trim();
        return text.Length > 0 ? text : $"nft exited with {status?.ShellCode}";
    }

    public static void Run(string script, string what)
    {
        if (TryRun(script) is { } err) throw new EngineError($"{what}: nft: {FirstLine(err)}");
    }

    private static string FirstLine(string s) => s.Split('\n')[0];
}
