// What a log driver is to berthd. The shim does the writing (it outlives berthd, so containers keep
// logging while berthd is down); a driver here checks its options at create, turns them into the shim's
// command line at start, and says where `docker logs` reads from.
import type { LogContext, LogOpts } from './options';

export interface LogDriver {
  readonly name: string;
  /** Throws Docker's error for an option this driver does not take or a value it refuses. */
  validate(o: LogOpts): void;
  /** The shim's log arguments (PROTOCOL.md, "Logging"); directories the files need are made here. */
  shimArgs(ctx: LogContext, o: LogOpts): Promise<string[]>;
  /** The file `docker logs` reads (the shared reader's format), or null when this driver keeps none. */
  readPath(ctx: LogContext, o: LogOpts): string | null;
  /** Inspect's LogPath: only json-file shows one, as Docker. */
  inspectPath(ctx: LogContext): string;
}
