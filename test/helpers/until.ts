/** Polls check until it holds; resolves with the milliseconds it took, rejects after ms. */
export async function until (check: () => boolean | Promise<boolean>, ms = 3_000): Promise<number> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return Date.now() - started
}
