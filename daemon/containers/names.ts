// Container names: Docker's character rules, and generated adjective_surname names. The word lists are
// berth's own (adjectives, and surnames of scientists and engineers).
import { randomInt } from 'node:crypto';

export const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const ADJECTIVES = [
  'agile', 'amber', 'ardent', 'azure', 'bold', 'brave', 'bright', 'brisk', 'calm', 'candid', 'careful', 'cheerful',
  'clever', 'cosmic', 'crisp', 'curious', 'daring', 'deft', 'eager', 'earnest', 'elated', 'epic', 'fearless',
  'fervent', 'fond', 'frosty', 'gallant', 'gentle', 'gifted', 'glad', 'golden', 'happy', 'hardy', 'hopeful',
  'humble', 'jolly', 'keen', 'kind', 'lively', 'loyal', 'lucid', 'lucky', 'merry', 'mellow', 'modest', 'nimble',
  'noble', 'patient', 'peaceful', 'placid', 'polite', 'proud', 'quick', 'quiet', 'radiant', 'rapid', 'serene',
  'sharp', 'shiny', 'silent', 'sleepy', 'smart', 'snowy', 'solid', 'steady', 'stoic', 'sunny', 'swift', 'tender',
  'tidy', 'upbeat', 'vibrant', 'vivid', 'warm', 'wise', 'witty', 'zealous', 'zen',
];

const SURNAMES = [
  'agnesi', 'archimedes', 'babbage', 'bardeen', 'bohr', 'boole', 'borg', 'bose', 'cannon', 'carson', 'cerf',
  'chandrasekhar', 'curie', 'darwin', 'dijkstra', 'einstein', 'euclid', 'euler', 'faraday', 'fermat', 'fermi',
  'feynman', 'franklin', 'galileo', 'gauss', 'goodall', 'hamilton', 'hawking', 'heisenberg', 'hertz', 'hopper',
  'hodgkin', 'hypatia', 'johnson', 'joliot', 'kepler', 'knuth', 'kowalevski', 'lamarr', 'lamport', 'leakey',
  'liskov', 'lovelace', 'lumiere', 'maxwell', 'mayer', 'meitner', 'mendel', 'mirzakhani', 'morse', 'newton',
  'nobel', 'noether', 'pascal', 'pasteur', 'payne', 'planck', 'poincare', 'ramanujan', 'ritchie', 'sammet',
  'shannon', 'somerville', 'tesla', 'thompson', 'torvalds', 'turing', 'volta', 'wilson', 'wozniak', 'wright',
  'yalow', 'yonath',
];

export function generateName(taken: (name: string) => boolean): string {
  for (let i = 0; i < 20; i++) {
    let n = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SURNAMES[randomInt(SURNAMES.length)]}`;
    if (i > 5) n += randomInt(10);
    if (!taken(`/${n}`)) return n;
  }
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SURNAMES[randomInt(SURNAMES.length)]}${randomInt(1_000_000)}`;
}
