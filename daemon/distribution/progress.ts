// The progress messages of pull and push, shaped as Docker writes them: `progressDetail` for current clients
// and the pre-drawn `progress` bar for old ones (jsonmessage's JSONProgress rendering at full width).
import type { StreamMessage } from '../images/model';
import { humanSize } from '../lib/units';

export { humanSize };

export function progressBar(current: number, total: number): string {
  if (total <= 0) return humanSize(current).padStart(8);
  const pct = Math.min(50, Math.floor(Math.floor((current / total) * 100) / 2));
  const bar = `[${'='.repeat(pct)}>${' '.repeat(50 - pct)}] `;
  const numbers = current > total ? humanSize(current).padStart(8) : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + numbers;
}

export type Out = (m: StreamMessage) => void;

export const status = (id: string, text: string): StreamMessage => ({ status: text, progressDetail: {}, id });

export const progressMsg = (id: string, text: string, current: number, total: number): StreamMessage => ({
  status: text, progressDetail: { current, total }, progress: progressBar(current, total), id,
});

/** Sends progress for one id at most every `ms` milliseconds, and always the last one when finished. */
export class Throttle {
  private last = 0;
  constructor(private readonly out: Out, private readonly id: string, private readonly text: string, private readonly total: number, private readonly ms = 100) {}
  update(current: number, force = false): void {
    const now = Date.now();
    if (!force && now - this.last < this.ms) return;
    this.last = now;
    this.out(progressMsg(this.id, this.text, current, this.total));
  }
}

/** A short (12 hex) id of a digest, as pull and push show layers. */
export const shortId = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);
