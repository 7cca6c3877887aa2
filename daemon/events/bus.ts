// In-process event bus: every state change is published here; GET /events (a later issue) subscribes.
// Events are kept in a bounded ring so that `since` can replay recent history.
import { EventEmitter } from 'node:events';
import { nowNs } from '../lib/time';
import { stateChanged } from '../state/changes';

export interface BerthEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: bigint;
}

export class EventBus {
  private readonly emitter = new EventEmitter();
  private readonly ring: BerthEvent[] = [];
  private static readonly RING = 1024;

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(type: string, action: string, id: string, attributes: Record<string, string> = {}): void {
    const ns = nowNs();
    const ev: BerthEvent = { Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope: 'local', time: Number(ns / 1_000_000_000n), timeNano: ns };
    this.ring.push(ev);
    if (this.ring.length > EventBus.RING) this.ring.shift();
    // Every change a client can see comes with an event: answers kept from before it are stale.
    stateChanged();
    this.emitter.emit('event', ev);
  }

  recent(): readonly BerthEvent[] {
    return this.ring;
  }

  subscribe(fn: (ev: BerthEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }
}
