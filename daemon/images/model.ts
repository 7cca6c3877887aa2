// Types of the image service, shared by its verb files (load, remove) and by its callers.
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Logger } from 'pino';
import type { LayerRecord, LayerStore } from '../storage/layers/store';
import type { ImageRow, ImageStore, RefRow } from './store';
import type { NamedRef } from './reference';

/** An image as other services see it. */
export interface ImageRecord {
  id: string;            // sha256:<64hex>
  config: any;           // the parsed image config
  size: number;
  created: string;       // config.created
  topChain: string | null;
  parent: string;        // '' or the parent image id (commit, build)
  lastTagTime: string;
}

export interface ImageHooks {
  /** Ids of the containers whose image is `imageId`. */
  imageInUse(imageId: string): string[];
  emit(type: string, action: string, id: string, attrs?: Record<string, string>): void;
  /** Whether a container is running (paused and restarting count as running). Without it every container is
   *  taken as running, which is the cautious reading: the image is never removed from under one. */
  containerRunning?(containerId: string): boolean;
}

/** One line of a `docker rmi` answer. */
export type DeleteItem = { Untagged: string } | { Deleted: string };

/** A JSON stream message (pull, load, …). */
export type StreamMessage = Record<string, unknown>;

/** What the service's verb files use of it; nothing outside daemon/images/ gets this. */
export interface ImageInternals {
  readonly store: ImageStore;
  readonly layers: LayerStore;
  readonly hooks: ImageHooks;
  readonly log: Logger;
  /** Where `docker load` spools archives. */
  readonly tmpRoot: string;
  /** Lookup for users: hidden images are not found. */
  find(ref: string): ImageRecord;
  record(row: ImageRow): ImageRecord;
  refs(imageId: string): RefRow[];
  labels(img: ImageRecord): Record<string, string>;
  /** An image event, with the image's labels and `name` as attributes. */
  emit(img: ImageRecord, action: string, name: string): void;
  /** Drops the cached parsed config of a deleted image. */
  forget(imageId: string): void;
  /** Points a tag at an image; returns the id it pointed at before, if another. `touch` sets LastTagTime. */
  setTag(img: ImageRecord, named: NamedRef, touch: boolean): string | undefined;
  /** Deletes layers no image row and no running load needs; returns them, topmost first. */
  collectLayers(): LayerRecord[];
  /** Deletes hidden image rows whose containers are gone. */
  sweepHidden(): number;
}
