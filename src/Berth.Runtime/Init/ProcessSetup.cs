using Berth.Linux;
using Berth.Linux.Files;
using Berth.Linux.Interop;
using Berth.Linux.Processes;
using Berth.Linux.Security;

namespace Berth.Runtime.Init;

/// <summary>The container process's credentials and limits, applied in the init right before exec.</summary>
internal static unsafe class ProcessSetup
{
    public static void Rlimits(InitPlan plan)
    {
        foreach (var (res, soft, hard) in plan.Rlimits)
        {
            try { Berth.Linux.Security.Rlimits.Set(0, res, soft, hard); }
            catch (LinuxException e)
            {
                throw new RuntimeError($"process.rlimits: set {Berth.Linux.Security.Rlimits.Name(res)} soft={soft} hard={hard}: {LinuxException.Describe(e.Errno)}");
            }
        }
    }

    public static void OomScoreAdj(InitPlan plan)
    {
        if (plan.OomScoreAdj is { } adj) Fd.WriteFile("/proc/self/oom_score_adj", adj.ToString());
    }

    /// <summary>Bounding set, then uid/gid/groups keeping capabilities, then the four sets and ambient.</summary>
    public static void Credentials(InitPlan plan)
    {
        ulong known = plan.LastCap >= 63 ? ulong.MaxValue : (1UL << (plan.LastCap + 1)) - 1;
        Capabilities.LimitBounding(plan.CapBounding & known, plan.LastCap);
        Proc.Prctl(Consts.PR_SET_KEEPCAPS, 1, what: "prctl(PR_SET_KEEPCAPS)");

        if (!(plan.InUserNs && plan.AdditionalGids.Count == 0 && SetgroupsDenied()))
        {
            var groups = plan.AdditionalGids.ToArray();
            fixed (uint* g = groups)
                if (LibC.setgroups(groups.Length, g) != 0)
                    throw LinuxException.Last("setgroups", string.Join(',', groups));
        }
        if (LibC.setresgid(plan.Gid, plan.Gid, plan.Gid) != 0) throw LinuxException.Last("setgid", plan.Gid.ToString());
        if (LibC.setresuid(plan.Uid, plan.Uid, plan.Uid) != 0) throw LinuxException.Last("setuid", plan.Uid.ToString());
        Proc.Prctl(Consts.PR_SET_KEEPCAPS, 0, what: "prctl(PR_SET_KEEPCAPS)");

        Capabilities.Set(plan.CapEffective & known, plan.CapPermitted & known, plan.CapInheritable & known);
        Capabilities.SetAmbient(plan.CapAmbient & known & plan.CapPermitted & plan.CapInheritable, plan.LastCap);
    }

    private static bool SetgroupsDenied()
    {
        try { return File.ReadAllText("/proc/self/setgroups").Trim() == "deny"; }
        catch (IOException) { return false; }
    }

    /// <summary>Finds args[0] the way execvp would, with the container's PATH.</summary>
    public static string ResolveExecutable(InitPlan plan)
    {
        var name = plan.Args[0];
        if (name.Contains('/'))
        {
            var full = name.StartsWith('/') ? name : Path.Combine(plan.Cwd, name);
            CheckExecutable(full, name);
            return full;
        }
        var pathVar = plan.Env.LastOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..]
            ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var dir in pathVar.Split(':'))
        {
            var candidate = Path.Combine(dir.Length == 0 ? "." : dir, name);
            fixed (byte* p = CString.Of(candidate))
                if (LibC.access(p, 1 /* X_OK */) == 0 && !Directory.Exists(candidate)) return candidate;
        }
        throw new RuntimeError($"exec: \"{name}\": executable file not found in $PATH");
    }

    private static void CheckExecutable(string path, string name)
    {
        fixed (byte* p = CString.Of(path))
        {
            if (LibC.access(p, 1) != 0)
            {
                var err = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                throw new RuntimeError($"exec: \"{name}\": {LinuxException.Describe(err)}");
            }
        }
        if (Directory.Exists(path)) throw new RuntimeError($"exec: \"{name}\": is a directory");
    }
}
