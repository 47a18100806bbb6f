// This process's file descriptors open on one file, from /proc/self/fd.
import { readdirSync, readlinkSync } from 'node:fs';

export function openFds(file: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false; // closed meanwhile (readdir's own)
    }
  }).length;
}
