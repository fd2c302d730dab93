/** Polls check until it holds; resolves with the milliseconds it took, rejects after ms. */
export async function until (check: () => boolean | Promise<boolean>, ms = 3_000): Promise<number> {
  const started = Date.now()
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return Date.now() - started
}

/** Milliseconds step takes: a baseline of the machine's pace at that moment, for a bound that must hold on a busy machine too. */
export async function timed (step: () => Promise<unknown>): Promise<number> {
  const started = Date.now()
  await step()
  return Date.now() - started
}
