// IP addresses as they appear in URLs and Host headers (IPv6 in brackets) and as sockets take
// them (bare): one place to convert between the two.

/** `[::1]` → `::1`; anything else as it is. */
export function unbracketed (host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/** `::1` → `[::1]`, for a URL or a Host header; names and IPv4 as they are. */
export function bracketed (host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host
}

/** 127.0.0.0/8, ::1, localhost and IPv4-mapped loopback, bracketed or not. */
export function isLoopback (address: string): boolean {
  const a = unbracketed(address.toLowerCase())
  return a === 'localhost' || a === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(a)
}
