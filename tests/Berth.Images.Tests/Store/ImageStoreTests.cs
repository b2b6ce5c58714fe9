using Berth.Images.Store;

namespace Berth.Images.Tests.Store;

public class ImageStoreTests
{
    [Fact]
    public void Register_resolve_tag_and_remove()
    {
        using var t = new TempDir();
        var s = new ImageStore(t.Path);
        var (m, _) = StoreFixture.AddImage(s, "a", "1");
        var img = s.Register(m, ["docker.io/library/busybox:latest"]);
        Assert.Equal(img.Id, s.Resolve("busybox").Id);
        Assert.Equal(img.Id, s.Resolve("busybox:latest").Id);
        Assert.Equal(img.Id, s.Resolve(img.Id[7..15]).Id);
        s.Tag("busybox", "mine");
        Assert.Equal(["docker.io/library/busybox:latest", "mine:latest"], s.Resolve("mine").Names);
        var (_, deleted, untagged) = s.Remove("mine", force: false);
        Assert.False(deleted);
        Assert.Equal("mine:latest", untagged);
        Assert.True(s.Remove("busybox", force: false).Deleted);
        Assert.Throws<ImageNotFoundException>(() => s.Resolve("busybox"));
    }

    [Fact]
    public void Rmi_refuses_an_image_in_use_unless_forced()
    {
        using var t = new TempDir();
        var s = new ImageStore(t.Path);
        s.Register(StoreFixture.AddImage(s, "a", "1").Manifest, ["x"]);
        Assert.Throws<InvalidOperationException>(() => s.Remove("x", force: false, inUse: _ => true));
        Assert.True(s.Remove("x", force: true, inUse: _ => true).Deleted);
    }

    [Fact]
    public void A_name_moves_to_the_newer_image()
    {
        using var t = new TempDir();
        var s = new ImageStore(t.Path);
        var a = s.Register(StoreFixture.AddImage(s, "a", "1").Manifest, ["app"]);
        var b = s.Register(StoreFixture.AddImage(s, "a", "2").Manifest, ["app"]);
        Assert.Equal(b.Id, s.Resolve("app").Id);
        Assert.Empty(s.List().Single(i => i.Id == a.Id).Names);
    }

    [Fact]
    public void Prune_deletes_only_unreferenced_blobs_and_layers()
    {
        using var t = new TempDir();
        var s = new ImageStore(t.Path);
        var keep = s.Register(StoreFixture.AddImage(s, "keep", "1").Manifest, ["keep"]);
        var drop = s.Register(StoreFixture.AddImage(s, "drop", "2").Manifest, ["drop"]);
        s.EnsureLayers(keep);
        s.EnsureLayers(drop);
        Assert.Equal(2, s.Layers.List().Count());
        s.Remove("drop", force: false);
        var r = s.Prune();
        Assert.Equal(3, r.Blobs); // manifest, config, layer
        Assert.Equal(1, r.Layers);
        Assert.Equal(3, s.Content.List().Count());
        Assert.Equal("1", File.ReadAllText(Path.Combine(s.Layers.PathOf(s.Layers.List().Single()), "keep")));
        s.Materialize(keep, Path.Combine(t.Path, "flat"));
        Assert.True(File.Exists(Path.Combine(t.Path, "flat/keep")));
    }

    [Fact]
    public async Task Concurrent_writers_lose_nothing()
    {
        using var t = new TempDir();
        var root = t.Path;
        const int perWriter = 15;
        // Two writers, each with its own store object (own lock fds, as two processes would have),
        // register images and unpack a shared layer at the same time.
        var writers = Enumerable.Range(0, 2).Select(w => Task.Run(() =>
        {
            var s = new ImageStore(root);
            for (int i = 0; i < perWriter; i++)
            {
                using var l = s.LockShared();
                var (m, _) = StoreFixture.AddImage(s, "f", $"{w}-{i}");
                var img = s.Register(m, [$"w{w}/img:{i}"]);
                var shared = s.Register(StoreFixture.AddImage(s, "shared", "same").Manifest, ["shared"]);
                s.EnsureLayers(img);
                s.EnsureLayers(shared);
            }
        })).ToArray();
        await Task.WhenAll(writers);
        var store = new ImageStore(root);
        var images = store.List();
        Assert.Equal(2 * perWriter + 1, images.Count);
        for (int w = 0; w < 2; w++)
            for (int i = 0; i < perWriter; i++)
                Assert.NotNull(store.Resolve($"w{w}/img:{i}"));
        Assert.All(store.Content.List(), d => Assert.True(store.Content.Verify(d)));
        Assert.Equal(2 * perWriter + 1, store.Layers.List().Count());
        Assert.Empty(Directory.GetDirectories(Path.Combine(root, "layers"), ".tmp-*"));
        Assert.Empty(Directory.GetFiles(Path.Combine(root, "ingest")));
    }

    [Fact]
    public async Task Prune_waits_for_an_import_holding_the_store_lock()
    {
        using var t = new TempDir();
        var s = new ImageStore(t.Path);
        var held = s.LockShared();
        var (m, _) = StoreFixture.AddImage(s, "a", "1"); // written, not yet registered
        var prune = Task.Run(() => new ImageStore(t.Path).Prune());
        await Task.Delay(200);
        Assert.False(prune.IsCompleted);
        s.Register(m, ["late"]);
        held.Dispose();
        Assert.Equal(0, (await prune).Blobs);
        Assert.NotNull(s.Resolve("late"));
    }
}
