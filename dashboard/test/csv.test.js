// The Data page's CSV: quoting and spreadsheet formula neutralization.
import assert from 'node:assert/strict';
import { test } from 'node:test';

// data.js imports the page's modules (Preact, the router); the CSV function is pure, so it is
// loaded from its source text.
import { readFileSync } from 'node:fs';
const src = readFileSync(new URL('../src/pages/data.js', import.meta.url), 'utf8');
const body = src.slice(src.indexOf('export function toCsv'), src.indexOf('\n}\n', src.indexOf('export function toCsv')) + 2);
const toCsv = new Function(`${body.replace('export ', '')}; return toCsv;`)();

test('values are quoted as RFC 4180 says, and formulas are neutralized', () => {
  const csv = toCsv([
    { timestamp: 't1', property: 'p', value: '21.5' },
    { timestamp: 't2', property: 'p', value: '-3' },
    { timestamp: 't3', property: 'p', value: '=HYPERLINK("http://x")' },
    { timestamp: 't4', property: 'p', value: 'a,b' },
    { timestamp: 't5', property: 'p', value: '@SUM(A1)' },
    { timestamp: 't6', property: 'p', value: 'line\r\nbreak' },
    { timestamp: 't7', property: 'p', value: '-1+HYPERLINK("http://x")' },
    { timestamp: 't8', property: 'p', value: '-2.5e-3' },
  ]);
  assert.equal(
    csv,
    'timestamp,property,value\n' +
      't1,p,21.5\n' +
      't2,p,-3\n' +
      't3,p,"\'=HYPERLINK(""http://x"")"\n' +
      't4,p,"a,b"\n' +
      "t5,p,'@SUM(A1)\n" +
      't6,p,"line\r\nbreak"\n' +
      't7,p,"\'-1+HYPERLINK(""http://x"")"\n' +
      't8,p,-2.5e-3\n',
  );
});
