using Xunit;

// The suite drives real containers on a small shared machine: one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true, MaxParallelThreads = 1)]
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
