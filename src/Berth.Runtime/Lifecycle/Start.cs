using Berth.Linux;
using Berth.Linux.Interop;
using Berth.Runtime.Hooks;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>`start`: releases a created container's init through the exec fifo.</summary>
public static class Start
{
    public static void Execute(StateStore store, string id) => Execute(store, Container.Load(store, id));

    /// <summary>Starts <paramref name="c"/> as loaded (or just created, by `run`).</summary>
    public static void Execute(StateStore store, Container c)
    {
        var id = c.Id;
        using (store.LockContainer(id))
        {
            // `run`'s own container is created, with init waiting on the pipe (if init has died since, the
            // write below fails with EPIPE): no /proc reads to find that out again.
            switch (c.StartFd >= 0 ? "created" : c.Status())
            {
                case "created": break;
                case "stopped": throw new RuntimeError("cannot start a container that has stopped");
                case "running": throw new RuntimeError("cannot start an already running container");
                case var s: throw new RuntimeError($"cannot start a container in the {s} state");
            }
            Logging.Timing.Mark("start: checked");
            if (c.StartFd >= 0)
            {
                try { Berth.Linux.Files.Fd.WriteAll(c.StartFd, "0"u8, "the container init's start pipe"); }
                finally { c.CloseStartFd(); }
            }
            else ReleaseThroughFifo(store.FifoPath(id));
            Logging.Timing.Mark("start: released");
            // Nothing is written: "running" is what the kernel says once the fifo is gone, or the pipe
            // is closed (Container.Status).
            c.Record.Status = "running";
        }
        var poststart = HooksOf(c)?.Poststart;
        var state = poststart is { Count: > 0 } ? Create.StateJson(c, "running") : "";
        try { HookRunner.RunAll(poststart, state, "poststart"); }
        catch (RuntimeError e) { Logging.Log.Warn(e.Message); }
    }

    private static unsafe void ReleaseThroughFifo(string fifo)
    {
        int fd;
        fixed (byte* p = CString.Of(fifo)) fd = LibC.open(p, Consts.O_WRONLY | Consts.O_NONBLOCK | Consts.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var err = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw new RuntimeError(err == Consts.ENXIO ? "container init is not waiting to start (it has exited)"
                : $"open exec fifo {fifo}: {LinuxException.Describe(err)}");
        }
        try { Berth.Linux.Files.Fd.WriteAll(fd, "0"u8, $"exec fifo {fifo}"); }
        finally { LibC.close(fd); }
        File.Delete(fifo);
    }

    /// <summary>The container's hooks: known in memory (run), else read from its saved config.</summary>
    internal static Oci.Runtime.Hooks? HooksOf(Container c)
    {
        if (c.HooksKnown) return c.KnownHooks;
        try { return LoadHooks(c.Store.Config(c.Record)); }
        catch (RuntimeError) { return null; }
    }

    /// <summary>The hooks of a saved config, read without the full spec model (start and delete are hot).</summary>
    internal static Oci.Runtime.Hooks? LoadHooks(string config)
    {
        try
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(config);
            // Most configs have no hooks: skip the JSON parse unless the key can be there (an escaped
            // key, \u0068ooks, is caught by the backslash-u test).
            if (bytes.AsSpan().IndexOf("\"hooks\""u8) < 0 && bytes.AsSpan().IndexOf("\\u"u8) < 0) return null;
            using var doc = System.Text.Json.JsonDocument.Parse(bytes, new System.Text.Json.JsonDocumentOptions
            {
                CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true,
            });
            if (!doc.RootElement.TryGetProperty("hooks", out var h) || h.ValueKind != System.Text.Json.JsonValueKind.Object) return null;
            return new Oci.Runtime.Hooks
            {
                Prestart = List(h, "prestart"), CreateRuntime = List(h, "createRuntime"),
                CreateContainer = List(h, "createContainer"), StartContainer = List(h, "startContainer"),
                Poststart = List(h, "poststart"), Poststop = List(h, "poststop"),
            };
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { return null; }
    }

    private static List<Oci.Runtime.Hook>? List(System.Text.Json.JsonElement hooks, string kind)
    {
        if (!hooks.TryGetProperty(kind, out var arr) || arr.ValueKind != System.Text.Json.JsonValueKind.Array) return null;
        static List<string>? Strings(System.Text.Json.JsonElement o, string name) =>
            o.TryGetProperty(name, out var a) && a.ValueKind == System.Text.Json.JsonValueKind.Array
                ? a.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : null;
        return arr.EnumerateArray().Select(o => new Oci.Runtime.Hook
        {
            Path = o.TryGetProperty("path", out var p) ? p.GetString() ?? "" : "",
            Args = Strings(o, "args"),
            Env = Strings(o, "env"),
            Timeout = o.TryGetProperty("timeout", out var t) && t.ValueKind == System.Text.Json.JsonValueKind.Number ? t.GetInt32() : null,
        }).ToList();
    }
}
