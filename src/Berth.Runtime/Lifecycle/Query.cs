using System.Text.Json;
using Berth.Oci;
using Berth.Runtime.State;

namespace Berth.Runtime.Lifecycle;

/// <summary>`state ID` and `list`.</summary>
public static class Query
{
    public static string State(StateStore store, string id)
    {
        var c = Container.Load(store, id);
        return Oci.Runtime.StateWriter.ToJson(c.ToOciState(), indented: true);
    }

    public static List<Oci.Runtime.State> List(StateStore store)
    {
        var list = new List<Oci.Runtime.State>();
        foreach (var id in store.Ids())
        {
            try { list.Add(Container.Load(store, id).ToOciState()); }
            catch (RuntimeError) { /* removed meanwhile, or corrupt: skip as runc does */ }
        }
        return list;
    }
}
