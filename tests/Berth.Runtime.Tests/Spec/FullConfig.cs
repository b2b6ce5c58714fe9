namespace Berth.Runtime.Tests.Spec;

/// <summary>A config.json that sets every field of the model (every non-nullable one as the serializer writes it).</summary>
internal static class FullConfig
{
    public const string Json = """
    {
      "ociVersion": "1.3.0",
      "process": {
        "terminal": true,
        "consoleSize": { "height": 25, "width": 80 },
        "user": { "uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6], "username": "u" },
        "args": ["sh", "-c", "echo hi"],
        "commandLine": "sh -c 'echo hi'",
        "env": ["PATH=/bin", "TERM=xterm"],
        "cwd": "/work",
        "capabilities": {
          "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "inheritable": ["CAP_KILL"],
          "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        },
        "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 1024 }],
        "noNewPrivileges": true,
        "apparmorProfile": "docker-default",
        "oomScoreAdj": -500,
        "selinuxLabel": "system_u:system_r:container_t:s0",
        "scheduler": { "policy": "SCHED_DEADLINE", "nice": 0, "priority": 0, "flags": ["SCHED_FLAG_RESET_ON_FORK"],
                       "runtime": 100, "deadline": 200, "period": 300 },
        "ioPriority": { "class": "IOPRIO_CLASS_BE", "priority": 4 },
        "execCPUAffinity": { "initial": "0", "final": "0-3" }
      },
      "root": { "path": "rootfs", "readonly": true },
      "hostname": "box",
      "domainname": "example.org",
      "mounts": [
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/data", "type": "none", "source": "/srv", "options": ["rbind", "ro", "idmap"],
          "uidMappings": [{ "containerID": 0, "hostID": 100000, "size": 65536 }],
          "gidMappings": [{ "containerID": 0, "hostID": 100000, "size": 65536 }] }
      ],
      "hooks": {
        "prestart": [{ "path": "/bin/p", "args": ["p", "1"], "env": ["A=1"], "timeout": 5 }],
        "createRuntime": [{ "path": "/bin/cr" }],
        "createContainer": [{ "path": "/bin/cc" }],
        "startContainer": [{ "path": "/bin/sc" }],
        "poststart": [{ "path": "/bin/ps" }],
        "poststop": [{ "path": "/bin/pst" }]
      },
      "annotations": { "org.example.key": "value" },
      "linux": {
        "uidMappings": [{ "containerID": 0, "hostID": 1000, "size": 1 }],
        "gidMappings": [{ "containerID": 0, "hostID": 1000, "size": 1 }],
        "sysctl": { "net.ipv4.ip_forward": "1" },
        "resources": {
          "devices": [{ "allow": false, "access": "rwm" }, { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw" }],
          "memory": { "limit": 536870912, "reservation": 268435456, "swap": 1073741824, "kernel": -1, "kernelTCP": -1,
                      "swappiness": 60, "disableOOMKiller": false, "useHierarchy": true, "checkBeforeUpdate": true },
          "cpu": { "shares": 1024, "quota": 50000, "burst": 1000, "period": 100000, "realtimeRuntime": 0, "realtimePeriod": 0,
                   "cpus": "0-1", "mems": "0", "idle": 0 },
          "pids": { "limit": 100 },
          "blockIO": { "weight": 500, "leafWeight": 300,
                       "weightDevice": [{ "major": 8, "minor": 0, "weight": 600, "leafWeight": 200 }],
                       "throttleReadBpsDevice": [{ "major": 8, "minor": 0, "rate": 1048576 }],
                       "throttleWriteBpsDevice": [{ "major": 8, "minor": 0, "rate": 1048576 }],
                       "throttleReadIOPSDevice": [{ "major": 8, "minor": 0, "rate": 100 }],
                       "throttleWriteIOPSDevice": [{ "major": 8, "minor": 0, "rate": 100 }] },
          "hugepageLimits": [{ "pageSize": "2MB", "limit": 209715200 }],
          "network": { "classID": 1048577, "priorities": [{ "name": "eth0", "priority": 500 }] },
          "rdma": { "mlx5_1": { "hcaHandles": 3, "hcaObjects": 10000 } },
          "unified": { "io.weight": "100" }
        },
        "cgroupsPath": "/berth/box",
        "namespaces": [
          { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" },
          { "type": "user" }, { "type": "cgroup" }, { "type": "time" }
        ],
        "devices": [{ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0 }],
        "netDevices": { "eth1": { "name": "net1" } },
        "seccomp": {
          "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
          "flags": ["SECCOMP_FILTER_FLAG_LOG"], "listenerPath": "/run/seccomp.sock", "listenerMetadata": "meta",
          "syscalls": [
            { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" },
            { "names": ["personality"], "action": "SCMP_ACT_NOTIFY", "errnoRet": 1,
              "args": [{ "index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ" }] }
          ]
        },
        "rootfsPropagation": "rslave",
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:container_file_t:s0",
        "personality": { "domain": "LINUX", "flags": [] },
        "timeOffsets": { "monotonic": { "secs": 10, "nanosecs": 5 }, "boottime": { "secs": -3, "nanosecs": 0 } },
        "intelRdt": { "closID": "guaranteed", "schemata": ["L3:0=ff"], "l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=50",
                      "enableMonitoring": true },
        "memoryPolicy": { "mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"] }
      }
    }
    """;
}
