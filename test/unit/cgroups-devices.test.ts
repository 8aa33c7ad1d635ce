// Device rule conversion and runc's devices emulator transitions.

import { InvalidArgumentError } from '../../runtime/errors';
import {
  DEFAULT_DEVICE_RULES,
  DeviceEmulator,
  deviceRuleString,
  deviceRulesFromOci,
  effectiveDeviceRules,
} from '../../runtime/cgroups/device-rules';

const str = (rules: { allow: boolean; type: string; major: number; minor: number; access: string }[]) =>
  rules.map((r) => `${r.allow ? 'allow' : 'deny'} ${deviceRuleString(r as never)}`);

describe('device rules', () => {
  test('OCI → rules: defaults for type and numbers, access normalized', () => {
    expect(deviceRulesFromOci([{ allow: false, access: 'mwr' }, { allow: true, type: 'c', major: 1, minor: null, access: 'r' }])).toEqual([
      { type: 'a', major: -1, minor: -1, access: 'rwm', allow: false },
      { type: 'c', major: 1, minor: -1, access: 'r', allow: true },
    ]);
    expect(() => deviceRulesFromOci([{ allow: true, type: 'u', access: 'r' }])).toThrow(InvalidArgumentError);
    expect(() => deviceRulesFromOci([{ allow: true, type: 'c', access: 'rx' }])).toThrow(/access/);
    expect(() => deviceRulesFromOci([{ allow: true, type: 'c', major: -2, access: 'r' }])).toThrow(/major/);
  });

  test('runc 1.1 default list is appended after the user rules', () => {
    const rules = effectiveDeviceRules([{ allow: true, type: 'c', major: 4, minor: 1, access: 'rw' }]);
    expect(rules[0]).toEqual({ type: 'c', major: 4, minor: 1, access: 'rw', allow: true });
    expect(rules.slice(1)).toEqual([...DEFAULT_DEVICE_RULES]);
    expect(DEFAULT_DEVICE_RULES.map(deviceRuleString)).toContain('c 10:200 rwm');
  });

  test('fresh cgroup (allow-all) → disruptive deny, then allows', () => {
    const cur = DeviceEmulator.fromList('a *:* rwm\n');
    const target = DeviceEmulator.fromRules(effectiveDeviceRules([]));
    const t = str(cur.transition(target));
    expect(t[0]).toBe('deny a *:* rwm');
    expect(t).toHaveLength(1 + 11);
  });

  test('whitelist → whitelist writes only the difference', () => {
    const cur = DeviceEmulator.fromList('c 1:3 rwm\nc 1:5 rwm\nc 136:* rwm\n');
    const target = DeviceEmulator.fromRules([
      { type: 'c', major: 1, minor: 3, access: 'rw', allow: true },
      { type: 'c', major: 136, minor: -1, access: 'rwm', allow: true },
      { type: 'b', major: 8, minor: 0, access: 'r', allow: true },
    ]);
    expect(str(cur.transition(target))).toEqual(['deny c 1:3 m', 'deny c 1:5 rwm', 'allow b 8:0 r']);
  });

  test('switching to allow-all is one rule', () => {
    const cur = DeviceEmulator.fromList('c 1:3 rwm\n');
    const target = DeviceEmulator.fromRules([{ type: 'a', major: -1, minor: -1, access: 'rwm', allow: true }]);
    expect(str(cur.transition(target))).toEqual(['allow a *:* rwm']);
  });

  test('cannot punch a hole in a wildcard allow', () => {
    expect(() =>
      DeviceEmulator.fromRules([
        { type: 'c', major: -1, minor: -1, access: 'rwm', allow: true },
        { type: 'c', major: 1, minor: 3, access: 'r', allow: false },
      ]),
    ).toThrow(/cannot punch a hole in the wildcard rule c \*:\* rwm/);
  });
});
