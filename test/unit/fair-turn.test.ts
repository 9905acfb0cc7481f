/*
 * fairTurn() (src/semantic/fair-turn.ts): lookups that become ready in the
 * same turn take one synchronous step each per turn of the event loop, so
 * other work (here: a probe that records the order of events) runs between
 * their steps instead of after all of them. Counted, not timed.
 */
import { describe, expect, it } from 'vitest';
import { fairTurn, SLICE_MS } from '../../src/semantic/fair-turn.js';

/** Synchronous work for longer than a slice, as an HNSW search at 100k is. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

async function run(useTurns: boolean, steps: number): Promise<string[]> {
  const events: string[] = [];
  let probing = true;
  const probe = () => {
    events.push('probe');
    if (probing) setImmediate(probe);
  };
  const tasks = Array.from({ length: steps }, async (_, i) => {
    await Promise.resolve(); // all ready in the same turn
    if (useTurns) {
      const turn = fairTurn();
      if (turn !== undefined) await turn;
    }
    busy(SLICE_MS * 2);
    events.push(`step ${i}`);
  });
  setImmediate(probe);
  await Promise.all(tasks);
  probing = false;
  return events;
}

/** How many probe turns ran between the first and the last step. */
function probesBetweenSteps(events: string[]): number {
  const first = events.findIndex((e) => e.startsWith('step'));
  let last = events.length - 1;
  while (last > first && !events[last]!.startsWith('step')) last--;
  return events.slice(first, last).filter((e) => e === 'probe').length;
}

describe('fairTurn', () => {
  it('lets other work run between steps that became ready together', async () => {
    const events = await run(true, 12);
    expect(events.filter((e) => e.startsWith('step'))).toHaveLength(12);
    // One step per turn: a probe turn between every two steps.
    expect(probesBetweenSteps(events)).toBeGreaterThanOrEqual(11);
  });

  it('without it the steps run back to back (what the test guards against)', async () => {
    expect(probesBetweenSteps(await run(false, 12))).toBe(0);
  });

  it('short steps share a turn: no waiting while the slice lasts', async () => {
    await new Promise((r) => setImmediate(r)); // a fresh turn: the last test's slice is over
    let waited = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        await Promise.resolve();
        const turn = fairTurn();
        if (turn !== undefined) {
          waited++;
          await turn;
        }
      }),
    );
    expect(waited).toBe(0);
  });
});
