// The supervisor's book of slots: per backend and slot, whether it answers (and since when it
// does not), whether a poll or a submit is in flight there, and whether it is closed (lost, or
// refusing units).
import type { Backend } from '../backends/backend.js';

export interface SlotState {
  backend: Backend;
  name: string;
  /** since when polls or starts there fail to get an answer; null while it answers */
  failingSince: number | null;
  /** a poll in flight, since when */
  polling: number | null;
  /** when the last poll started: a slot is polled once a tick, or at once when its backend signals a change */
  polledAt: number;
  submitting: boolean;
  prepared: boolean;
  /** lost: its attempts ended, its units moved */
  down: string | null;
  /** answers but takes no units (not ready, a failed push); what runs there goes on */
  refused: string | null;
}

export class Slots {
  /** by backend name, then slot name: asked for every unit several times a loop, so no key string is built */
  private readonly book = new Map<string, Map<string, SlotState>>();

  get(backend: Backend, name: string): SlotState {
    let ofBackend = this.book.get(backend.name);
    if (!ofBackend) this.book.set(backend.name, (ofBackend = new Map()));
    let s = ofBackend.get(name);
    if (!s) {
      s = { backend, name, failingSince: null, polling: null, polledAt: -Infinity, submitting: false, prepared: false, down: null, refused: null };
      ofBackend.set(name, s);
    }
    return s;
  }

  *all(): IterableIterator<SlotState> {
    for (const ofBackend of this.book.values()) yield* ofBackend.values();
  }

  /** Takes units: neither lost nor refusing. */
  static open(s: SlotState): boolean {
    return !s.down && !s.refused;
  }

  /**
   * Since when the slot has not answered, counting a poll in flight longer than a tick as
   * unanswered since it started; null while it answers.
   */
  static silentSince(s: SlotState, now: number, tickMs: number): number | null {
    return s.failingSince ?? (s.polling !== null && now - s.polling > tickMs ? s.polling : null);
  }
}
