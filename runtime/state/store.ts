// One directory per container under --root: state.json (our own record, not the OCI
// state), config.json (the validated spec, for exec/delete), exec.fifo while created.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CgroupDescription } from '../cgroups/manager';
import { AlreadyExistsError, InternalError, NotFoundError } from '../errors';
import type { Spec } from '../spec/types';
import { writeFileAtomic } from './atomic';

export const RECORD_VERSION = 1;

export interface ContainerRecord {
  version: number;
  id: string;
  bundle: string;
  rootfs: string;
  /** Host pid of the container's init; 0 before it exists. */
  pid: number;
  /** /proc/<pid>/stat start time, so a reused pid never reads as our container. */
  pidStartTime: string;
  created: string;
  owner: string;
  annotations: Record<string, string>;
  cgroup: CgroupDescription;
  systemdCgroup: boolean;
}

export class StateStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  execFifo(id: string): string {
    return path.join(this.dir(id), 'exec.fifo');
  }

  /** Claims the id: the directory's exclusive creation is the lock against a concurrent create. */
  reserve(id: string): void {
    fs.mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      fs.mkdirSync(this.dir(id), { mode: 0o711 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new AlreadyExistsError('container with given ID already exists');
      }
      throw err;
    }
  }

  exists(id: string): boolean {
    return fs.existsSync(path.join(this.dir(id), 'state.json'));
  }

  save(rec: ContainerRecord): void {
    writeFileAtomic(path.join(this.dir(rec.id), 'state.json'), JSON.stringify(rec));
  }

  load(id: string): ContainerRecord {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.dir(id), 'state.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('container does not exist');
      throw err;
    }
    const rec = JSON.parse(text) as ContainerRecord;
    if (rec.version !== RECORD_VERSION) {
      throw new InternalError(`state of container ${id} has version ${rec.version}, this vkernel reads ${RECORD_VERSION}`);
    }
    return rec;
  }

  saveSpec(id: string, spec: Spec): void {
    writeFileAtomic(path.join(this.dir(id), 'config.json'), JSON.stringify(spec));
  }

  loadSpec(id: string): Spec {
    return JSON.parse(fs.readFileSync(path.join(this.dir(id), 'config.json'), 'utf8')) as Spec;
  }

  /** Ids with a state record, sorted. A directory without state.json is a create in progress. */
  list(): string[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.root);
    } catch {
      return [];
    }
    return names.filter((n) => this.exists(n)).sort();
  }

  remove(id: string): void {
    fs.rmSync(this.dir(id), { recursive: true, force: true });
  }
}
