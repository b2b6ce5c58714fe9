namespace Berth.Engine.Containers;

/// <summary>What `berth run` was asked for (the first slice of issue 6's flags).</summary>
public sealed class RunOptions
{
    public required string Image { get; init; }
    public List<string> Command { get; init; } = [];
    public string? Name { get; init; }
    public bool Remove { get; init; }
    public bool Detach { get; init; }
    public bool Tty { get; init; }
    public bool Interactive { get; init; }
    public List<string> Env { get; init; } = [];
    public string? Workdir { get; init; }
    public string? User { get; init; }
    public List<string>? Entrypoint { get; init; }
    public string? Hostname { get; init; }
    /// <summary>none, host, private, bridge or container:NAME (the CLI defaults to bridge).</summary>
    public string Network { get; init; } = "none";
    public bool ReadOnly { get; init; }
    /// <summary>--init: berth's minimal init as PID 1 (signals forwarded, zombies reaped).</summary>
    public bool Init { get; init; }
    public bool Privileged { get; init; }
    public List<string> CapAdd { get; init; } = [];
    public List<string> CapDrop { get; init; } = [];
    public string? Seccomp { get; init; }
    public long? Memory { get; init; }
    /// <summary>docker's meaning: memory + swap; -1 unlimited; unset = twice the memory, as docker does.</summary>
    public long? MemorySwap { get; init; }
    public long? PidsLimit { get; init; }
    public ulong? CpuShares { get; init; }
    public double? Cpus { get; init; }
    public string? CpusetCpus { get; init; }
    public Dictionary<string, string> Sysctls { get; init; } = [];
    /// <summary>
    /// For a foreground run whose CLI did not re-execute itself: create's fallback when the sealed
    /// exec stub is refused (the runtime's CreateOptions.ProtectExe).
    /// </summary>
    public Action? ProtectExe { get; init; }
    // Detached containers and their monitor (docs/adr/0009).
    /// <summary>`berth create`: prepare the container (rootfs, config, record) and start nothing.</summary>
    public bool CreateOnly { get; init; }
    /// <summary>--restart no|on-failure[:N]|always|unless-stopped.</summary>
    public string RestartPolicy { get; init; } = "no";
    /// <summary>--log-opt max-size / max-file.</summary>
    public Monitor.LogOptions Log { get; init; } = Monitor.LogOptions.Default;
    /// <summary>--stop-signal (else the image's StopSignal, else SIGTERM) and --stop-timeout (else 10 s).</summary>
    public string? StopSignal { get; init; }
    public int? StopTimeout { get; init; }
    /// <summary>-p [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (bridge network only).</summary>
    public List<string> Publish { get; init; } = [];
    /// <summary>--add-host NAME:IP lines for /etc/hosts.</summary>
    public List<string> AddHost { get; init; } = [];
    /// <summary>--dns IP: replaces the host's nameservers in /etc/resolv.conf.</summary>
    public List<string> Dns { get; init; } = [];
    /// <summary>-v, --mount and --tmpfs, parsed (<see cref="Volumes.MountSpec"/>).</summary>
    public List<Volumes.MountRequest> Mounts { get; init; } = [];
    /// <summary>--ulimit, parsed (<see cref="RunFlags.ParseUlimit"/>).</summary>
    public List<Berth.Oci.Runtime.Rlimit> Ulimits { get; init; } = [];
    public List<DeviceRequest> Devices { get; init; } = [];
    public Dictionary<string, string> Labels { get; init; } = [];
    /// <summary>--platform: the image must be this platform (os/arch[/variant]).</summary>
    public string? Platform { get; init; }
}
