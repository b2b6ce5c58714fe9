namespace Berth.Runtime.Spec;

using System.Text.Json;
using Berth.Oci.Runtime;

/// <summary>
/// A hand-written reader for config.json's happy path: it builds the same <see cref="Oci.Runtime.Spec"/>
/// the source-generated deserializer (<c>OciJson.Default.Spec</c>) would, without the ~3 ms first-use cost
/// of that serializer's metadata. Keys match ASCII-case-insensitively, unknown fields are skipped at every
/// level, the last duplicate wins, null sets a nullable field to null. At the first thing it is not sure
/// about (a value of the wrong type, a number out of range, a null in a collection, an escaped or non-ASCII
/// or '$' key, malformed JSON) it returns false, and <see cref="SpecLoader"/> falls back to the
/// serializer, whose errors it turns into precise messages. Tests check both paths agree.
/// </summary>
internal static class SpecFastReader
{
    private static readonly JsonReaderOptions Options = new()
    {
        CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 64,
    };

    private delegate bool Item<T>(ref Utf8JsonReader r, out T? value);

    public static bool TryRead(ReadOnlySpan<byte> json, out Oci.Runtime.Spec spec)
    {
        spec = null!;
        try
        {
            var r = new Utf8JsonReader(json, Options);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject) return false;
            if (!ReadSpec(ref r, out var s) || s is null) return false;
            if (r.Read()) return false; // trailing content (the reader throws on most of it anyway)
            spec = s;
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            return false;
        }
    }

    // ---- keys ----

    /// <summary>The current property name, ASCII-lowercased into <paramref name="buf"/>; false when unusual.
    /// A name too long for any property comes back empty (matches nothing, so it is skipped).</summary>
    private static bool Key(ref Utf8JsonReader r, scoped Span<char> buf, out int len)
    {
        len = 0;
        if (r.TokenType != JsonTokenType.PropertyName || r.ValueIsEscaped || r.HasValueSequence) return false;
        var s = r.ValueSpan;
        if (s.Length > 0 && s[0] == (byte)'$') return false;
        foreach (var b in s) if (b >= 0x80) return false;
        if (s.Length > buf.Length) return true;
        for (int i = 0; i < s.Length; i++)
        {
            var c = (char)s[i];
            buf[i] = c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;
        }
        len = s.Length;
        return true;
    }

    /// <summary>Moves to the next property (name and value); false at the end of the object or when unusual.</summary>
    private static bool Next(ref Utf8JsonReader r, scoped Span<char> buf, out int len, out bool end)
    {
        len = 0; end = false;
        if (!r.Read()) return false;
        if (r.TokenType == JsonTokenType.EndObject) { end = true; return true; }
        if (!Key(ref r, buf, out len)) return false;
        return r.Read();
    }

    private static bool Begin(ref Utf8JsonReader r, out bool isNull)
    {
        isNull = r.TokenType == JsonTokenType.Null;
        return isNull || r.TokenType == JsonTokenType.StartObject;
    }

    // ---- scalars ----

    private static bool Str(ref Utf8JsonReader r, out string? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.String) return false;
        v = r.GetString();
        return true;
    }

    private static bool Bool(ref Utf8JsonReader r, out bool v)
    {
        v = r.TokenType == JsonTokenType.True;
        return r.TokenType is JsonTokenType.True or JsonTokenType.False;
    }

    private static bool BoolN(ref Utf8JsonReader r, out bool? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (!Bool(ref r, out var b)) return false;
        v = b;
        return true;
    }

    private static bool U16N(ref Utf8JsonReader r, out ushort? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.Number || !r.TryGetUInt16(out var n)) return false;
        v = n;
        return true;
    }

    private static bool U32(ref Utf8JsonReader r, out uint v)
    {
        v = 0;
        return r.TokenType == JsonTokenType.Number && r.TryGetUInt32(out v);
    }

    private static bool U32N(ref Utf8JsonReader r, out uint? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (!U32(ref r, out var n)) return false;
        v = n;
        return true;
    }

    private static bool I32(ref Utf8JsonReader r, out int v)
    {
        v = 0;
        return r.TokenType == JsonTokenType.Number && r.TryGetInt32(out v);
    }

    private static bool I32N(ref Utf8JsonReader r, out int? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (!I32(ref r, out var n)) return false;
        v = n;
        return true;
    }

    private static bool I64(ref Utf8JsonReader r, out long v)
    {
        v = 0;
        return r.TokenType == JsonTokenType.Number && r.TryGetInt64(out v);
    }

    private static bool I64N(ref Utf8JsonReader r, out long? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (!I64(ref r, out var n)) return false;
        v = n;
        return true;
    }

    private static bool U64(ref Utf8JsonReader r, out ulong v)
    {
        v = 0;
        return r.TokenType == JsonTokenType.Number && r.TryGetUInt64(out v);
    }

    private static bool U64N(ref Utf8JsonReader r, out ulong? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (!U64(ref r, out var n)) return false;
        v = n;
        return true;
    }

    // ---- collections (a null element or value is "unusual") ----

    private static bool NonNullStr(ref Utf8JsonReader r, out string v)
    {
        v = null!;
        if (r.TokenType != JsonTokenType.String) return false;
        v = r.GetString()!;
        return true;
    }

    private static bool List<T>(ref Utf8JsonReader r, Item<T> item, out List<T>? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.StartArray) return false;
        var list = new List<T>();
        while (true)
        {
            if (!r.Read()) return false;
            if (r.TokenType == JsonTokenType.EndArray) break;
            if (r.TokenType == JsonTokenType.Null || !item(ref r, out var x)) return false;
            list.Add(x!);
        }
        v = list;
        return true;
    }

    private static bool Dict<T>(ref Utf8JsonReader r, Item<T> item, out Dictionary<string, T>? v)
    {
        v = null;
        if (r.TokenType == JsonTokenType.Null) return true;
        if (r.TokenType != JsonTokenType.StartObject) return false;
        var dict = new Dictionary<string, T>();
        while (true)
        {
            if (!r.Read()) return false;
            if (r.TokenType == JsonTokenType.EndObject) break;
            if (r.TokenType != JsonTokenType.PropertyName) return false;
            var key = r.GetString()!;
            if (key.Length > 0 && key[0] == '$') return false;
            if (!r.Read() || r.TokenType == JsonTokenType.Null || !item(ref r, out var x)) return false;
            dict[key] = x!;
        }
        v = dict;
        return true;
    }

    private static bool StrList(ref Utf8JsonReader r, out List<string>? v) => List<string>(ref r, NonNullStr, out v);
    private static bool StrDict(ref Utf8JsonReader r, out Dictionary<string, string>? v) => Dict<string>(ref r, NonNullStr, out v);

    // ---- the model ----

    private static bool ReadSpec(ref Utf8JsonReader r, out Oci.Runtime.Spec? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull) || isNull) return false;
        var o = new Oci.Runtime.Spec();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "ociversion": { if (!Str(ref r, out var x)) return false; o.OciVersion = x!; break; }
                case "process": { if (!ReadProcess(ref r, out var x)) return false; o.Process = x; break; }
                case "root": { if (!ReadRoot(ref r, out var x)) return false; o.Root = x; break; }
                case "hostname": { if (!Str(ref r, out var x)) return false; o.Hostname = x; break; }
                case "domainname": { if (!Str(ref r, out var x)) return false; o.Domainname = x; break; }
                case "mounts": { if (!List<Mount>(ref r, ReadMount, out var x)) return false; o.Mounts = x; break; }
                case "hooks": { if (!ReadHooks(ref r, out var x)) return false; o.Hooks = x; break; }
                case "annotations": { if (!StrDict(ref r, out var x)) return false; o.Annotations = x; break; }
                case "linux": { if (!ReadLinux(ref r, out var x)) return false; o.Linux = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadProcess(ref Utf8JsonReader r, out Process? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Process();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "terminal": { if (!Bool(ref r, out var x)) return false; o.Terminal = x; break; }
                case "consolesize": { if (!ReadBox(ref r, out var x)) return false; o.ConsoleSize = x; break; }
                case "user": { if (!ReadUser(ref r, out var x)) return false; o.User = x!; break; }
                case "args": { if (!StrList(ref r, out var x)) return false; o.Args = x; break; }
                case "commandline": { if (!Str(ref r, out var x)) return false; o.CommandLine = x; break; }
                case "env": { if (!StrList(ref r, out var x)) return false; o.Env = x; break; }
                case "cwd": { if (!Str(ref r, out var x)) return false; o.Cwd = x!; break; }
                case "capabilities": { if (!ReadCapabilities(ref r, out var x)) return false; o.Capabilities = x; break; }
                case "rlimits": { if (!List<Rlimit>(ref r, ReadRlimit, out var x)) return false; o.Rlimits = x; break; }
                case "nonewprivileges": { if (!Bool(ref r, out var x)) return false; o.NoNewPrivileges = x; break; }
                case "apparmorprofile": { if (!Str(ref r, out var x)) return false; o.ApparmorProfile = x; break; }
                case "oomscoreadj": { if (!I32N(ref r, out var x)) return false; o.OomScoreAdj = x; break; }
                case "selinuxlabel": { if (!Str(ref r, out var x)) return false; o.SelinuxLabel = x; break; }
                case "scheduler": { if (!ReadScheduler(ref r, out var x)) return false; o.Scheduler = x; break; }
                case "iopriority": { if (!ReadIoPriority(ref r, out var x)) return false; o.IoPriority = x; break; }
                case "execcpuaffinity": { if (!ReadCpuAffinity(ref r, out var x)) return false; o.ExecCPUAffinity = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadBox(ref Utf8JsonReader r, out Box? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Box();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "height": { if (!U32(ref r, out var x)) return false; o.Height = x; break; }
                case "width": { if (!U32(ref r, out var x)) return false; o.Width = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadUser(ref Utf8JsonReader r, out User? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new User();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "uid": { if (!U32(ref r, out var x)) return false; o.Uid = x; break; }
                case "gid": { if (!U32(ref r, out var x)) return false; o.Gid = x; break; }
                case "umask": { if (!U32N(ref r, out var x)) return false; o.Umask = x; break; }
                case "additionalgids": { if (!List<uint>(ref r, U32, out var x)) return false; o.AdditionalGids = x; break; }
                case "username": { if (!Str(ref r, out var x)) return false; o.Username = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadCapabilities(ref Utf8JsonReader r, out Capabilities? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Capabilities();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "bounding": { if (!StrList(ref r, out var x)) return false; o.Bounding = x; break; }
                case "effective": { if (!StrList(ref r, out var x)) return false; o.Effective = x; break; }
                case "inheritable": { if (!StrList(ref r, out var x)) return false; o.Inheritable = x; break; }
                case "permitted": { if (!StrList(ref r, out var x)) return false; o.Permitted = x; break; }
                case "ambient": { if (!StrList(ref r, out var x)) return false; o.Ambient = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadRlimit(ref Utf8JsonReader r, out Rlimit? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Rlimit();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "type": { if (!Str(ref r, out var x)) return false; o.Type = x!; break; }
                case "hard": { if (!U64(ref r, out var x)) return false; o.Hard = x; break; }
                case "soft": { if (!U64(ref r, out var x)) return false; o.Soft = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadScheduler(ref Utf8JsonReader r, out Scheduler? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Scheduler();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "policy": { if (!Str(ref r, out var x)) return false; o.Policy = x!; break; }
                case "nice": { if (!I32N(ref r, out var x)) return false; o.Nice = x; break; }
                case "priority": { if (!I32N(ref r, out var x)) return false; o.Priority = x; break; }
                case "flags": { if (!StrList(ref r, out var x)) return false; o.Flags = x; break; }
                case "runtime": { if (!U64N(ref r, out var x)) return false; o.Runtime = x; break; }
                case "deadline": { if (!U64N(ref r, out var x)) return false; o.Deadline = x; break; }
                case "period": { if (!U64N(ref r, out var x)) return false; o.Period = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadIoPriority(ref Utf8JsonReader r, out IoPriority? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new IoPriority();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "class": { if (!Str(ref r, out var x)) return false; o.Class = x!; break; }
                case "priority": { if (!I32(ref r, out var x)) return false; o.Priority = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadCpuAffinity(ref Utf8JsonReader r, out CpuAffinity? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new CpuAffinity();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "initial": { if (!Str(ref r, out var x)) return false; o.Initial = x; break; }
                case "final": { if (!Str(ref r, out var x)) return false; o.Final = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadRoot(ref Utf8JsonReader r, out Root? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Root();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "path": { if (!Str(ref r, out var x)) return false; o.Path = x!; break; }
                case "readonly": { if (!Bool(ref r, out var x)) return false; o.Readonly = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadMount(ref Utf8JsonReader r, out Mount? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Mount();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "destination": { if (!Str(ref r, out var x)) return false; o.Destination = x!; break; }
                case "type": { if (!Str(ref r, out var x)) return false; o.Type = x; break; }
                case "source": { if (!Str(ref r, out var x)) return false; o.Source = x; break; }
                case "options": { if (!StrList(ref r, out var x)) return false; o.Options = x; break; }
                case "uidmappings": { if (!List<IdMapping>(ref r, ReadIdMapping, out var x)) return false; o.UidMappings = x; break; }
                case "gidmappings": { if (!List<IdMapping>(ref r, ReadIdMapping, out var x)) return false; o.GidMappings = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadHooks(ref Utf8JsonReader r, out Hooks? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Hooks();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "prestart": { if (!List<Hook>(ref r, ReadHook, out var x)) return false; o.Prestart = x; break; }
                case "createruntime": { if (!List<Hook>(ref r, ReadHook, out var x)) return false; o.CreateRuntime = x; break; }
                case "createcontainer": { if (!List<Hook>(ref r, ReadHook, out var x)) return false; o.CreateContainer = x; break; }
                case "startcontainer": { if (!List<Hook>(ref r, ReadHook, out var x)) return false; o.StartContainer = x; break; }
                case "poststart": { if (!List<Hook>(ref r, ReadHook, out var x)) return false; o.Poststart = x; break; }
                case "poststop": { if (!List<Hook>(ref r, ReadHook, out var x)) return false; o.Poststop = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadHook(ref Utf8JsonReader r, out Hook? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Hook();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "path": { if (!Str(ref r, out var x)) return false; o.Path = x!; break; }
                case "args": { if (!StrList(ref r, out var x)) return false; o.Args = x; break; }
                case "env": { if (!StrList(ref r, out var x)) return false; o.Env = x; break; }
                case "timeout": { if (!I32N(ref r, out var x)) return false; o.Timeout = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadIdMapping(ref Utf8JsonReader r, out IdMapping? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new IdMapping();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "containerid": { if (!U32(ref r, out var x)) return false; o.ContainerID = x; break; }
                case "hostid": { if (!U32(ref r, out var x)) return false; o.HostID = x; break; }
                case "size": { if (!U32(ref r, out var x)) return false; o.Size = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadLinux(ref Utf8JsonReader r, out Linux? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Linux();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "uidmappings": { if (!List<IdMapping>(ref r, ReadIdMapping, out var x)) return false; o.UidMappings = x; break; }
                case "gidmappings": { if (!List<IdMapping>(ref r, ReadIdMapping, out var x)) return false; o.GidMappings = x; break; }
                case "sysctl": { if (!StrDict(ref r, out var x)) return false; o.Sysctl = x; break; }
                case "resources": { if (!ReadResources(ref r, out var x)) return false; o.Resources = x; break; }
                case "cgroupspath": { if (!Str(ref r, out var x)) return false; o.CgroupsPath = x; break; }
                case "namespaces": { if (!List<LinuxNamespace>(ref r, ReadNamespace, out var x)) return false; o.Namespaces = x; break; }
                case "devices": { if (!List<Device>(ref r, ReadDevice, out var x)) return false; o.Devices = x; break; }
                case "netdevices": { if (!Dict<NetDevice>(ref r, ReadNetDevice, out var x)) return false; o.NetDevices = x; break; }
                case "seccomp": { if (!ReadSeccomp(ref r, out var x)) return false; o.Seccomp = x; break; }
                case "rootfspropagation": { if (!Str(ref r, out var x)) return false; o.RootfsPropagation = x; break; }
                case "maskedpaths": { if (!StrList(ref r, out var x)) return false; o.MaskedPaths = x; break; }
                case "readonlypaths": { if (!StrList(ref r, out var x)) return false; o.ReadonlyPaths = x; break; }
                case "mountlabel": { if (!Str(ref r, out var x)) return false; o.MountLabel = x; break; }
                case "personality": { if (!ReadPersonality(ref r, out var x)) return false; o.Personality = x; break; }
                case "timeoffsets": { if (!Dict<TimeOffset>(ref r, ReadTimeOffset, out var x)) return false; o.TimeOffsets = x; break; }
                case "intelrdt": { if (!ReadIntelRdt(ref r, out var x)) return false; o.IntelRdt = x; break; }
                case "memorypolicy": { if (!ReadMemoryPolicy(ref r, out var x)) return false; o.MemoryPolicy = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadNetDevice(ref Utf8JsonReader r, out NetDevice? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new NetDevice();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "name": { if (!Str(ref r, out var x)) return false; o.Name = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadIntelRdt(ref Utf8JsonReader r, out IntelRdt? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new IntelRdt();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "closid": { if (!Str(ref r, out var x)) return false; o.ClosID = x; break; }
                case "schemata": { if (!StrList(ref r, out var x)) return false; o.Schemata = x; break; }
                case "l3cacheschema": { if (!Str(ref r, out var x)) return false; o.L3CacheSchema = x; break; }
                case "membwschema": { if (!Str(ref r, out var x)) return false; o.MemBwSchema = x; break; }
                case "enablemonitoring": { if (!Bool(ref r, out var x)) return false; o.EnableMonitoring = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadMemoryPolicy(ref Utf8JsonReader r, out MemoryPolicy? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new MemoryPolicy();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "mode": { if (!Str(ref r, out var x)) return false; o.Mode = x!; break; }
                case "nodes": { if (!Str(ref r, out var x)) return false; o.Nodes = x; break; }
                case "flags": { if (!StrList(ref r, out var x)) return false; o.Flags = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadTimeOffset(ref Utf8JsonReader r, out TimeOffset? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new TimeOffset();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "secs": { if (!I64(ref r, out var x)) return false; o.Secs = x; break; }
                case "nanosecs": { if (!U32(ref r, out var x)) return false; o.Nanosecs = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadPersonality(ref Utf8JsonReader r, out Personality? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Personality();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "domain": { if (!Str(ref r, out var x)) return false; o.Domain = x!; break; }
                case "flags": { if (!StrList(ref r, out var x)) return false; o.Flags = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadNamespace(ref Utf8JsonReader r, out LinuxNamespace? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new LinuxNamespace();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "type": { if (!Str(ref r, out var x)) return false; o.Type = x!; break; }
                case "path": { if (!Str(ref r, out var x)) return false; o.Path = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadDevice(ref Utf8JsonReader r, out Device? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Device();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "path": { if (!Str(ref r, out var x)) return false; o.Path = x!; break; }
                case "type": { if (!Str(ref r, out var x)) return false; o.Type = x!; break; }
                case "major": { if (!I64(ref r, out var x)) return false; o.Major = x; break; }
                case "minor": { if (!I64(ref r, out var x)) return false; o.Minor = x; break; }
                case "filemode": { if (!U32N(ref r, out var x)) return false; o.FileMode = x; break; }
                case "uid": { if (!U32N(ref r, out var x)) return false; o.Uid = x; break; }
                case "gid": { if (!U32N(ref r, out var x)) return false; o.Gid = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadResources(ref Utf8JsonReader r, out Resources? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Resources();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "devices": { if (!List<DeviceCgroup>(ref r, ReadDeviceCgroup, out var x)) return false; o.Devices = x; break; }
                case "memory": { if (!ReadMemory(ref r, out var x)) return false; o.Memory = x; break; }
                case "cpu": { if (!ReadCpu(ref r, out var x)) return false; o.Cpu = x; break; }
                case "pids": { if (!ReadPids(ref r, out var x)) return false; o.Pids = x; break; }
                case "blockio": { if (!ReadBlockIo(ref r, out var x)) return false; o.BlockIO = x; break; }
                case "hugepagelimits": { if (!List<HugepageLimit>(ref r, ReadHugepageLimit, out var x)) return false; o.HugepageLimits = x; break; }
                case "network": { if (!ReadNetwork(ref r, out var x)) return false; o.Network = x; break; }
                case "rdma": { if (!Dict<Rdma>(ref r, ReadRdma, out var x)) return false; o.Rdma = x; break; }
                case "unified": { if (!StrDict(ref r, out var x)) return false; o.Unified = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadNetwork(ref Utf8JsonReader r, out NetworkCgroup? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new NetworkCgroup();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "classid": { if (!U32N(ref r, out var x)) return false; o.ClassID = x; break; }
                case "priorities": { if (!List<InterfacePriority>(ref r, ReadInterfacePriority, out var x)) return false; o.Priorities = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadInterfacePriority(ref Utf8JsonReader r, out InterfacePriority? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new InterfacePriority();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "name": { if (!Str(ref r, out var x)) return false; o.Name = x!; break; }
                case "priority": { if (!U32(ref r, out var x)) return false; o.Priority = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadRdma(ref Utf8JsonReader r, out Rdma? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Rdma();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "hcahandles": { if (!U32N(ref r, out var x)) return false; o.HcaHandles = x; break; }
                case "hcaobjects": { if (!U32N(ref r, out var x)) return false; o.HcaObjects = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadDeviceCgroup(ref Utf8JsonReader r, out DeviceCgroup? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new DeviceCgroup();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "allow": { if (!Bool(ref r, out var x)) return false; o.Allow = x; break; }
                case "type": { if (!Str(ref r, out var x)) return false; o.Type = x; break; }
                case "major": { if (!I64N(ref r, out var x)) return false; o.Major = x; break; }
                case "minor": { if (!I64N(ref r, out var x)) return false; o.Minor = x; break; }
                case "access": { if (!Str(ref r, out var x)) return false; o.Access = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadMemory(ref Utf8JsonReader r, out Memory? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Memory();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "limit": { if (!I64N(ref r, out var x)) return false; o.Limit = x; break; }
                case "reservation": { if (!I64N(ref r, out var x)) return false; o.Reservation = x; break; }
                case "swap": { if (!I64N(ref r, out var x)) return false; o.Swap = x; break; }
                case "kernel": { if (!I64N(ref r, out var x)) return false; o.Kernel = x; break; }
                case "kerneltcp": { if (!I64N(ref r, out var x)) return false; o.KernelTCP = x; break; }
                case "swappiness": { if (!U64N(ref r, out var x)) return false; o.Swappiness = x; break; }
                case "disableoomkiller": { if (!BoolN(ref r, out var x)) return false; o.DisableOOMKiller = x; break; }
                case "usehierarchy": { if (!BoolN(ref r, out var x)) return false; o.UseHierarchy = x; break; }
                case "checkbeforeupdate": { if (!BoolN(ref r, out var x)) return false; o.CheckBeforeUpdate = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadCpu(ref Utf8JsonReader r, out Cpu? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Cpu();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "shares": { if (!U64N(ref r, out var x)) return false; o.Shares = x; break; }
                case "quota": { if (!I64N(ref r, out var x)) return false; o.Quota = x; break; }
                case "burst": { if (!U64N(ref r, out var x)) return false; o.Burst = x; break; }
                case "period": { if (!U64N(ref r, out var x)) return false; o.Period = x; break; }
                case "realtimeruntime": { if (!I64N(ref r, out var x)) return false; o.RealtimeRuntime = x; break; }
                case "realtimeperiod": { if (!U64N(ref r, out var x)) return false; o.RealtimePeriod = x; break; }
                case "cpus": { if (!Str(ref r, out var x)) return false; o.Cpus = x; break; }
                case "mems": { if (!Str(ref r, out var x)) return false; o.Mems = x; break; }
                case "idle": { if (!I64N(ref r, out var x)) return false; o.Idle = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadPids(ref Utf8JsonReader r, out Pids? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Pids();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "limit": { if (!I64N(ref r, out var x)) return false; o.Limit = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadBlockIo(ref Utf8JsonReader r, out BlockIo? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new BlockIo();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "weight": { if (!U16N(ref r, out var x)) return false; o.Weight = x; break; }
                case "leafweight": { if (!U16N(ref r, out var x)) return false; o.LeafWeight = x; break; }
                case "weightdevice": { if (!List<WeightDevice>(ref r, ReadWeightDevice, out var x)) return false; o.WeightDevice = x; break; }
                case "throttlereadbpsdevice": { if (!List<ThrottleDevice>(ref r, ReadThrottleDevice, out var x)) return false; o.ThrottleReadBpsDevice = x; break; }
                case "throttlewritebpsdevice": { if (!List<ThrottleDevice>(ref r, ReadThrottleDevice, out var x)) return false; o.ThrottleWriteBpsDevice = x; break; }
                case "throttlereadiopsdevice": { if (!List<ThrottleDevice>(ref r, ReadThrottleDevice, out var x)) return false; o.ThrottleReadIOPSDevice = x; break; }
                case "throttlewriteiopsdevice": { if (!List<ThrottleDevice>(ref r, ReadThrottleDevice, out var x)) return false; o.ThrottleWriteIOPSDevice = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadWeightDevice(ref Utf8JsonReader r, out WeightDevice? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new WeightDevice();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "major": { if (!I64(ref r, out var x)) return false; o.Major = x; break; }
                case "minor": { if (!I64(ref r, out var x)) return false; o.Minor = x; break; }
                case "weight": { if (!U16N(ref r, out var x)) return false; o.Weight = x; break; }
                case "leafweight": { if (!U16N(ref r, out var x)) return false; o.LeafWeight = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadThrottleDevice(ref Utf8JsonReader r, out ThrottleDevice? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new ThrottleDevice();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "major": { if (!I64(ref r, out var x)) return false; o.Major = x; break; }
                case "minor": { if (!I64(ref r, out var x)) return false; o.Minor = x; break; }
                case "rate": { if (!U64(ref r, out var x)) return false; o.Rate = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadHugepageLimit(ref Utf8JsonReader r, out HugepageLimit? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new HugepageLimit();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "pagesize": { if (!Str(ref r, out var x)) return false; o.PageSize = x!; break; }
                case "limit": { if (!U64(ref r, out var x)) return false; o.Limit = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadSeccomp(ref Utf8JsonReader r, out Seccomp? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new Seccomp();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "defaultaction": { if (!Str(ref r, out var x)) return false; o.DefaultAction = x!; break; }
                case "defaulterrnoret": { if (!U32N(ref r, out var x)) return false; o.DefaultErrnoRet = x; break; }
                case "architectures": { if (!StrList(ref r, out var x)) return false; o.Architectures = x; break; }
                case "flags": { if (!StrList(ref r, out var x)) return false; o.Flags = x; break; }
                case "listenerpath": { if (!Str(ref r, out var x)) return false; o.ListenerPath = x; break; }
                case "listenermetadata": { if (!Str(ref r, out var x)) return false; o.ListenerMetadata = x; break; }
                case "syscalls": { if (!List<SeccompSyscall>(ref r, ReadSyscall, out var x)) return false; o.Syscalls = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadSyscall(ref Utf8JsonReader r, out SeccompSyscall? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new SeccompSyscall();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "names": { if (!StrList(ref r, out var x)) return false; o.Names = x!; break; }
                case "action": { if (!Str(ref r, out var x)) return false; o.Action = x!; break; }
                case "errnoret": { if (!U32N(ref r, out var x)) return false; o.ErrnoRet = x; break; }
                case "args": { if (!List<SeccompArg>(ref r, ReadSeccompArg, out var x)) return false; o.Args = x; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }

    private static bool ReadSeccompArg(ref Utf8JsonReader r, out SeccompArg? v)
    {
        v = null;
        if (!Begin(ref r, out var isNull)) return false;
        if (isNull) return true;
        var o = new SeccompArg();
        Span<char> buf = stackalloc char[32];
        while (true)
        {
            if (!Next(ref r, buf, out var len, out var end)) return false;
            if (end) break;
            switch ((ReadOnlySpan<char>)buf[..len])
            {
                case "index": { if (!U32(ref r, out var x)) return false; o.Index = x; break; }
                case "value": { if (!U64(ref r, out var x)) return false; o.Value = x; break; }
                case "valuetwo": { if (!U64(ref r, out var x)) return false; o.ValueTwo = x; break; }
                case "op": { if (!Str(ref r, out var x)) return false; o.Op = x!; break; }
                default: r.Skip(); break;
            }
        }
        v = o;
        return true;
    }
}
