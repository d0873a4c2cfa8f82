import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isHostAllowed, parseArchiveUrl } from './model-url.js';

describe('isHostAllowed', () => {
  const allowed = (url: string, hosts: string[] | undefined): boolean => isHostAllowed(parseArchiveUrl(url), hosts);

  test('no list allows every host', () => {
    assert.ok(allowed('https://anything.example/x', undefined));
    assert.ok(allowed('https://anything.example/x', []));
  });

  test('exact hosts, ports and wildcards', () => {
    const list = ['models.example.com', 'cdn.example.net:8443', '*.storage.example.org', '127.0.0.1:9000'];
    assert.ok(allowed('https://models.example.com/a.mpta', list));
    assert.ok(allowed('http://MODELS.example.com:8080/a.mpta', list), 'an entry without port matches any port');
    assert.ok(allowed('https://cdn.example.net:8443/a', list));
    assert.ok(!allowed('https://cdn.example.net/a', list), 'port must match when given');
    assert.ok(allowed('https://eu.storage.example.org/a', list));
    assert.ok(allowed('https://a.b.storage.example.org/a', list));
    assert.ok(!allowed('https://storage.example.org/a', list), 'wildcard is for subdomains only');
    assert.ok(!allowed('https://evilstorage.example.org/a', list));
    assert.ok(!allowed('https://models.example.com.evil.io/a', list));
    assert.ok(allowed('http://127.0.0.1:9000/a', list));
    assert.ok(!allowed('http://127.0.0.1:9001/a', list));
  });

  test('default ports and IPv6', () => {
    assert.ok(allowed('https://h.example/a', ['h.example:443']));
    assert.ok(!allowed('http://h.example/a', ['h.example:443']));
    assert.ok(allowed('http://[::1]:8080/a', ['[::1]:8080']));
    assert.ok(allowed('http://[::1]:8080/a', ['::1']));
    assert.ok(!allowed('http://[::1]:8080/a', ['[::1]:9090']));
  });
});
