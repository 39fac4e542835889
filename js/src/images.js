// Tool images: base64 bytes become an object URL only when their first bytes say they are the
// image type the server named (PNG, JPEG, GIF or WebP). Nothing else is ever put in an <img>:
// no http(s) URL, no data: URL of another type, so a tool or model cannot make the page fetch.

const MAGIC = {
  "image/png": (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  "image/jpeg": (b) => startsWith(b, [0xff, 0xd8, 0xff]),
  "image/gif": (b) => startsWith(b, [0x47, 0x49, 0x46, 0x38]) && (b[4] === 0x37 || b[4] === 0x39) && b[5] === 0x61,
  "image/webp": (b) => startsWith(b, [0x52, 0x49, 0x46, 0x46]) && startsWith(b.subarray(8), [0x57, 0x45, 0x42, 0x50]),
};

function startsWith(bytes, prefix) {
  if (bytes.length < prefix.length) return false;
  return prefix.every((v, i) => bytes[i] === v);
}

// Base64 text to bytes, or null if it is not base64.
export function decodeBase64(data) {
  if (typeof data !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(data) || data.length % 4 === 1) return null;
  try {
    const bin = atob(data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

// The bytes of an image part if they are really of its declared type, else null.
export function checkedImage(image) {
  const check = MAGIC[image?.mimeType];
  if (!check || typeof image.data !== "string") return null;
  const bytes = decodeBase64(image.data);
  return bytes && check(bytes) ? bytes : null;
}
