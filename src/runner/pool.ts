/**
 * Runs `work` over `items` with at most `limit` at once (DSYNC's syncps=), in list order.
 * `stopped()` is asked before each start, so an emergency stop starts nothing new.
 */
export async function runPool<T>(items: T[], limit: number, work: (item: T) => Promise<void>, stopped: () => boolean = () => false): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length && !stopped()) {
      const item = items[next++]
      await work(item)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane))
}
