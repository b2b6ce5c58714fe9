using Berth.Linux.Processes;

namespace Berth.Linux.Tests.Processes;

/// <summary>A pthread running managed code: it runs, Join waits for it and rethrows what it threw.</summary>
public class NativeThreadTests
{
    [Fact]
    public void Runs_on_another_thread_and_join_waits()
    {
        int main = Environment.CurrentManagedThreadId, other = 0;
        long tid = 0;
        var t = NativeThread.Start(() =>
        {
            Thread.Sleep(50);
            other = Environment.CurrentManagedThreadId;
            tid = long.Parse(File.ReadAllText("/proc/thread-self/stat").Split(' ')[0]); // the kernel thread id
        });
        t.Join();
        Assert.NotEqual(0, other);
        Assert.NotEqual(main, other);
        Assert.NotEqual(Environment.ProcessId, (int)tid);
        t.Join(); // a second join is a no-op
    }

    [Fact]
    public void An_exception_in_the_thread_comes_out_of_join()
    {
        var t = NativeThread.Start(() => throw new InvalidOperationException("from the helper"));
        var e = Assert.Throws<InvalidOperationException>(t.Join);
        Assert.Equal("from the helper", e.Message);
    }
}
