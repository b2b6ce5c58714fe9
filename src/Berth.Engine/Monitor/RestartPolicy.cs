namespace Berth.Engine.Monitor;

/// <summary>
/// `--restart no|on-failure[:N]|always|unless-stopped`, and the monitor's decision after each exit.
/// A stop or kill by the user never restarts (docker's "manually stopped").
/// </summary>
public readonly record struct RestartPolicy(string Name, int MaxRetries)
{
    public static readonly RestartPolicy No = new("no", 0);

    /// <summary>Parses the flag's value; throws <see cref="ArgumentException"/> naming the value at fault.</summary>
    public static RestartPolicy Parse(string text)
    {
        var parts = text.Split(':', 2);
        switch (parts[0])
        {
            case "no" or "always" or "unless-stopped" when parts.Length == 1:
                return new RestartPolicy(parts[0], 0);
            case "on-failure":
                if (parts.Length == 1) return new RestartPolicy("on-failure", 0);
                if (int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n))
                    return new RestartPolicy("on-failure", n);
                throw new ArgumentException($"--restart {text}: the retry count \"{parts[1]}\" is not a non-negative number");
            default:
                throw new ArgumentException($"--restart {text}: expected no, on-failure[:N], always or unless-stopped");
        }
    }

    /// <summary>The form the flag takes and `inspect` shows ("on-failure:2").</summary>
    public override string ToString() => Name == "on-failure" && MaxRetries > 0 ? $"on-failure:{MaxRetries}" : Name;

    /// <summary>
    /// Restart after an exit with <paramref name="exitCode"/> (128+N for signal N), the container
    /// having been restarted <paramref name="restarts"/> times already?
    /// </summary>
    public bool ShouldRestart(int exitCode, int restarts, bool stoppedByUser)
    {
        if (stoppedByUser) return false;
        return Name switch
        {
            "always" or "unless-stopped" => true,
            "on-failure" => exitCode != 0 && (MaxRetries == 0 || restarts < MaxRetries),
            _ => false,
        };
    }

    /// <summary>docker's back-off: 100 ms doubling per restart, at most a minute.</summary>
    public static TimeSpan Delay(int restarts) =>
        TimeSpan.FromMilliseconds(Math.Min(60_000, 100.0 * Math.Pow(2, Math.Min(restarts, 20))));
}
