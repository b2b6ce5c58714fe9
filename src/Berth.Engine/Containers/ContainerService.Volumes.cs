using Berth.Engine.Volumes;
using Berth.Runtime.Spec;

namespace Berth.Engine.Containers;

/// <summary>`berth volume ...` and the volume side of run and rm.</summary>
public sealed partial class ContainerService
{
    public VolumeStore Volumes => _volumes;

    /// <summary>Names of the containers whose config mounts volume <paramref name="name"/>, running or not.</summary>
    public List<string> VolumeUsers(string name)
    {
        var users = new List<string>();
        foreach (var c in store.List())
        {
            Berth.Oci.Runtime.Spec spec;
            try { spec = SpecLoader.Load(store.Dir(c.Id)); }
            catch (SpecException) { continue; }
            if (spec.Mounts?.Any(m => _volumes.NameOfDataPath(m.Source) == name) == true) users.Add(c.Name);
        }
        return users;
    }

    public Volume CreateVolume(string? name)
    {
        using var l = _volumes.LockExclusive();
        return _volumes.Ensure(name).Volume; // docker: creating an existing volume is not an error
    }

    /// <summary>`volume rm`: refused while a container (running or stopped) mounts it.</summary>
    public void RemoveVolume(string name)
    {
        using var l = _volumes.LockExclusive();
        _volumes.Get(name);
        var users = VolumeUsers(name);
        if (users.Count > 0)
            throw new EngineError($"volume {name} is in use by container{(users.Count > 1 ? "s" : "")} {string.Join(", ", users)}: remove {(users.Count > 1 ? "them" : "it")} first");
        _volumes.Delete(name);
    }

    /// <summary>`rm -v`: the container, then its anonymous volumes (named ones stay, as in docker).</summary>
    public void RemoveWithAnonymousVolumes(string reference, bool force)
    {
        var c = store.Find(reference);
        var anonymous = AnonymousVolumes(c.Id);
        Remove(c.Id, force);
        RemoveVolumes(anonymous);
    }

    /// <summary>Volumes a failed or --rm run made for itself: removed unless another container took them up meanwhile.</summary>
    private void RemoveVolumes(List<string> names)
    {
        if (names.Count == 0) return;
        using var l = _volumes.LockExclusive();
        foreach (var n in names)
            if (VolumeUsers(n).Count == 0) _volumes.Delete(n);
    }

    /// <summary>The anonymous volumes (-v /path) container <paramref name="id"/> mounts.</summary>
    private List<string> AnonymousVolumes(string id)
    {
        try
        {
            var spec = SpecLoader.Load(store.Dir(id));
            return (spec.Mounts ?? []).Select(m => _volumes.NameOfDataPath(m.Source)).OfType<string>()
                .Where(n => _volumes.TryGet(n)?.Anonymous == true).ToList();
        }
        catch (SpecException) { return []; }
    }
}
