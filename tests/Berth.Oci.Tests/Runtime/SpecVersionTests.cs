namespace Berth.Oci.Tests.Runtime;

using Berth.Oci.Runtime;
using Xunit;

public class SpecVersionTests
{
    [Theory]
    [InlineData("1.0.0")]
    [InlineData("1.0.2-dev")]
    [InlineData("1.1.0-rc.1")]
    [InlineData("1.1.0-rc.3+dirty")]
    [InlineData("1.2.0")]
    [InlineData("1.2.1")]
    [InlineData("1.3.0")]
    [InlineData("1.3.99")]
    public void Supported(string v) => Assert.True(SpecVersion.IsSupported(v));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("0.6.0")]
    [InlineData("1.4.0")]
    [InlineData("2.0.0")]
    [InlineData("1.0")]
    [InlineData("1.0.0.0")]
    [InlineData("v1.0.0")]
    [InlineData("+1.0.0")]
    [InlineData("1. 0.0")]
    [InlineData("1.0.x")]
    [InlineData("1.99999999999.0")]
    public void Unsupported(string? v) => Assert.False(SpecVersion.IsSupported(v));

    [Fact]
    public void Current_is_supported() => Assert.True(SpecVersion.IsSupported(SpecVersion.Current));
}
