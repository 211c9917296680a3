import { failureDelay } from '@mailfront/auth';

describe('failureDelay', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('resolves once the delay has passed, not before', async () => {
    let done = false;
    const p = failureDelay(500).then(() => (done = true));
    await jest.advanceTimersByTimeAsync(499);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    await p;
  });

  test('0 means no delay: resolves with no timer at all', async () => {
    await failureDelay(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  test.each([-1, Number.NaN, Infinity])('rejects %p', async (ms) => {
    await expect(failureDelay(ms)).rejects.toThrow(RangeError);
  });
});
