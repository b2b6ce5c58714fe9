namespace Berth.Cli;

/// <summary>
/// urfave/cli-style parsing, as runc clients expect: flags (`--name value`, `--name=value`,
/// `-n value`, boolean `--flag`) until the first positional argument; the rest is positional.
/// </summary>
public sealed class ArgParser
{
    private readonly Dictionary<string, (string Canonical, bool TakesValue)> _known = [];
    private readonly HashSet<string> _multi = [];
    public Dictionary<string, string> Values { get; } = [];
    public Dictionary<string, List<string>> Lists { get; } = [];
    public HashSet<string> Flags { get; } = [];
    public List<string> Positional { get; } = [];

    public ArgParser Option(string names, bool takesValue = true)
    {
        var parts = names.Split('|');
        foreach (var p in parts) _known[p] = (parts[0], takesValue);
        return this;
    }

    public ArgParser Flag(string names) => Option(names, takesValue: false);

    /// <summary>An option that may repeat (`-e A=1 -e B=2`); values are kept in order.</summary>
    public ArgParser Multi(string names)
    {
        Option(names);
        _multi.Add(names.Split('|')[0]);
        return this;
    }

    public List<string> All(string name) => Lists.TryGetValue(name, out var l) ? l : [];

    public ArgParser Parse(IReadOnlyList<string> args, bool stopAtPositional = true)
    {
        int i = 0;
        for (; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--") { i++; break; }
            if (a.Length < 2 || a[0] != '-')
            {
                if (stopAtPositional) break;
                Positional.Add(a);
                continue;
            }
            var name = a.TrimStart('-');
            string? inline = null;
            var eq = name.IndexOf('=');
            if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            if (!_known.TryGetValue(name, out var spec))
                throw new UsageError($"flag provided but not defined: -{name}");
            if (spec.TakesValue)
            {
                var value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageError($"flag needs an argument: -{name}"));
                Values[spec.Canonical] = value;
                if (_multi.Contains(spec.Canonical))
                {
                    if (!Lists.TryGetValue(spec.Canonical, out var list)) Lists[spec.Canonical] = list = [];
                    list.Add(value);
                }
            }
            else
            {
                if (inline is not null && inline is not ("true" or "1"))
                {
                    if (inline is "false" or "0") continue;
                    throw new UsageError($"invalid boolean value \"{inline}\" for -{name}");
                }
                Flags.Add(spec.Canonical);
            }
        }
        for (; i < args.Count; i++) Positional.Add(args[i]);
        return this;
    }

    public string? Get(string name) => Values.TryGetValue(name, out var v) ? v : null;
    public bool Has(string name) => Flags.Contains(name);

    public int GetInt(string name, int dflt)
    {
        var v = Get(name);
        if (v is null) return dflt;
        return int.TryParse(v, out var n) && n >= 0 ? n : throw new UsageError($"invalid value \"{v}\" for --{name}");
    }
}

public sealed class UsageError(string message) : Exception(message);
