// Uses clients/browser/wsm-client.d.ts as an app would, through the
// installed package; client-types.test.mjs checks it with tsc --strict.
// Each @ts-expect-error line must fail to type-check: if the declarations
// grew too loose (any), tsc would report the directive as unused.
import { DEFAULT_PATH_PREFIX, WsmClient, WsmState, backoffDelay, retryHint } from '@libwsm/client';
import type {
  WsmClientOptions, WsmMessage, WsmProgressMessage, WsmStateDetail, WsmStateName,
} from '@libwsm/client';

const saved = { lastSeq: 4, epoch: 99 };
const options: WsmClientOptions = {
  backoff: { baseMs: 250, capMs: 8000 },
  stableMs: 3000,
  ...saved,
  onProgress: (m, client) => {
    const pct: number = m.progress;
    const stage: string | undefined = m.stage;
    const seq: number | null = client.lastSeq;
    console.log(pct, stage, seq);
  },
  onComplete: (m) => { const meta: Record<string, unknown> = m.metadata; console.log(meta); },
  onError: (m) => { const why: string = m.error; console.log(why); },
  onReset: (m) => { const epoch: number = m.epoch; console.log(epoch); },
  onState: (state: WsmStateName, detail: WsmStateDetail) => {
    if (detail.state === 'waiting-retry') {
      const wait: number = detail.delayMs;
      const hinted: boolean = detail.hinted;
      console.log(state, wait, hinted, detail.code);
    } else if (detail.state === 'closed' && detail.why === 'session-closed') {
      console.log('cleaned up');
    }
  },
};

const client = new WsmClient({ sessionId: 'job-42', pathPrefix: DEFAULT_PATH_PREFIX }, options);
const byUrl = new WsmClient('wss://example.com/api/images_mvp/progress/job-42', { autoConnect: false });
client.addEventListener('progress', (e) => { const pct: number = e.detail.progress; console.log(pct); });
client.addEventListener('state', (e) => { const s: WsmStateName = e.detail.state; console.log(s); });
if (client.state === WsmState.WAITING_RETRY) client.connect();
const resume: { lastSeq: number | null; epoch: number | null } = { lastSeq: client.lastSeq, epoch: client.epoch };
const delay: number = backoffDelay(2, 500, 10000, Math.random);
const hint: number | null = retryHint('lifetime; retry_ms=10');
function shown(m: WsmMessage): unknown {
  if (m.type === 'complete') return m.metadata;
  if (m.type === 'progress') return m.progress;
  return null;
}
const p: WsmProgressMessage = {
  seq: 1, epoch: 2, type: 'progress', sessionId: 'job-42', timestamp: 0, progress: 50,
};
// The browser's own WebSocket fits the injection option.
const injected = new WsmClient(new URL('ws://h/x'), { WebSocket, random: Math.random, autoConnect: false });
console.log(byUrl.url, injected.url, resume, delay, hint, shown(p));
byUrl.close(1000, 'done');

// @ts-expect-error: a session id is a string
new WsmClient({ sessionId: 42 });
// @ts-expect-error: not one of the states
const bogus: 'half-open' = client.state;
// @ts-expect-error: a progress message has no error
options.onProgress = (m) => console.log(m.error);
// @ts-expect-error: lastSeq is read-only
client.lastSeq = 5;
// @ts-expect-error: the backoff takes numbers
new WsmClient('ws://h/x', { backoff: { baseMs: '500' } });
// @ts-expect-error: "closed" details carry a why, not a delay
client.addEventListener('state', (e) => { if (e.detail.state === 'closed') console.log(e.detail.delayMs); });
console.log(bogus);
