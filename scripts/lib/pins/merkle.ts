// Merkle root of a file list: a file's leaf is its SHA-256; a directory's hash is the SHA-256
// of its children's lines `<kind> <sha256> <size> <name>\n`, sorted by name, where a
// directory's size is the bytes under it. Directories are implied by file paths, so empty
// (or fully excluded) directories do not count and the root follows from the manifest alone.
import { createHash } from 'node:crypto';

export interface MerkleFile {
  path: string;
  size: number;
  sha256: string;
}

type Node = { kind: 'file'; sha256: string; size: number } | { kind: 'dir'; children: Map<string, Node> };

export function merkleRoot(files: readonly MerkleFile[]): string {
  const top: Node = { kind: 'dir', children: new Map() };
  for (const f of files) {
    const parts = f.path.split('/');
    let dir = top;
    for (let i = 0; i < parts.length - 1; i++) {
      let child = dir.children.get(parts[i]!);
      if (!child) dir.children.set(parts[i]!, (child = { kind: 'dir', children: new Map() }));
      if (child.kind !== 'dir') throw new Error(`merkle: ${f.path} is under a file`);
      dir = child;
    }
    const name = parts[parts.length - 1]!;
    if (dir.children.has(name)) throw new Error(`merkle: duplicate path ${f.path}`);
    dir.children.set(name, { kind: 'file', sha256: f.sha256, size: f.size });
  }
  return hashDir(top).sha256;
}

function hashDir(dir: Node & { kind: 'dir' }): { sha256: string; size: number } {
  const names = [...dir.children.keys()].sort();
  let text = '';
  let total = 0;
  for (const name of names) {
    const node = dir.children.get(name)!;
    const { sha256, size } = node.kind === 'file' ? node : hashDir(node);
    text += `${node.kind} ${sha256} ${size} ${name}\n`;
    total += size;
  }
  return { sha256: createHash('sha256').update(text).digest('hex'), size: total };
}
