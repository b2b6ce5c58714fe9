using Berth.Images.Content;

namespace Berth.Images;

/// <summary>An image document or archive that is malformed or does not match what it claims.</summary>
public class ImageFormatException(string message) : Exception(message);

/// <summary>Stored or received content whose digest is not the one it is named by.</summary>
public sealed class DigestMismatchException(string subject, Digest expected, string actual)
    : ImageFormatException($"{subject}: digest mismatch: expected {expected}, got {actual}; the content is corrupt and was not used");

/// <summary>More bytes than a configured limit allows.</summary>
public sealed class SizeLimitException(string message) : ImageFormatException(message);

/// <summary>No image by that name or id.</summary>
public sealed class ImageNotFoundException(string reference)
    : Exception($"image not known: {reference} (see `berth images`; load one with `berth load -i FILE`)");
