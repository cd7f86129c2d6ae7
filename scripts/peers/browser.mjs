// Drives Debian's headless Chromium through npm playwright-core for end-to-end tests.
//
//   node scripts/peers/browser.mjs steps.json
//
// steps.json is a list of steps, or {"steps": [...], "timeout_ms": 10000} (per-step timeout):
//   {"goto": url}
//   {"fill": {"label": "API key", "value": "..."}}      by accessible label
//   {"press": "Tab" | "Enter" | "Space" | any Playwright key name}   keyboard only
//   {"click": {"role": "button" | "link" | ..., "name": "..."}}
//   {"wait_for_url": "substring"}
//   {"screenshot": "/abs/path.png"}
//   {"expect_focus": {"role": ..., "name": ...}}      fails unless that element has focus
//   {"a11y": true}                                    records the accessibility tree; fails when
//                                                     a form control has no accessible name
// Prints one JSON line: {"ok": true, "url", "title", "text", "steps": [...]} or
// {"ok": false, "error", "failed_step", "url", "title", "text", "steps": [...]}.
// Filled values are never echoed: they may be secrets.
//
// playwright-core comes from $SWITCHYARD_TEST_BROWSER/node_modules (default .peers/browser).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const browserDir = process.env.SWITCHYARD_TEST_BROWSER || resolve(here, '../../.peers/browser');
const { chromium } = createRequire(join(browserDir, 'node_modules', 'noop.js'))('playwright-core');

const CHROMIUM = process.env.SWITCHYARD_TEST_CHROMIUM || '/usr/bin/chromium';
// The headless flags from docs: no sandbox (root in CI), no GPU, nothing phoning home.
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
// Roles a user fills in or activates: each needs an accessible name.
const CONTROL_ROLES = new Set([
  'button', 'checkbox', 'combobox', 'link', 'listbox', 'menuitem', 'radio', 'searchbox',
  'slider', 'spinbutton', 'switch', 'tab', 'textbox',
]);

class StepFailure extends Error {}

async function focusedElement(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id || undefined,
      text: (el.innerText || el.value || el.getAttribute('aria-label') || '').slice(0, 80),
    };
  });
}

async function expectFocus(page, { role, name }) {
  const matches = page.getByRole(role, { name, exact: true });
  const focused = await matches.evaluateAll((els) => els.some((el) => el === document.activeElement));
  if (!focused) {
    const actual = await focusedElement(page);
    throw new StepFailure(`expected focus on ${role} "${name}", focus is on ${JSON.stringify(actual)}`);
  }
  return { focused: { role, name } };
}

// Chromium's own accessibility tree (through CDP): names exactly as assistive technology gets them.
async function accessibilityAudit(page) {
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send('Accessibility.getFullAXTree');
  const unnamed = [];
  for (const node of nodes) {
    const role = node.role?.value;
    if (node.ignored || !CONTROL_ROLES.has(role) || (node.name?.value ?? '').trim() !== '') continue;
    let element = null;
    if (node.backendDOMNodeId !== undefined) {
      const { node: dom } = await cdp.send('DOM.describeNode', { backendNodeId: node.backendDOMNodeId });
      element = { tag: dom.localName, attributes: dom.attributes };
    }
    unnamed.push({ role, element });
  }
  await cdp.detach();
  const snapshot = await page.locator('body').ariaSnapshot();
  if (unnamed.length > 0) {
    throw new StepFailure(`form controls without an accessible name: ${JSON.stringify(unnamed)}`);
  }
  return { snapshot };
}

async function runStep(page, step, timeout) {
  const [kind] = Object.keys(step);
  const arg = step[kind];
  switch (kind) {
    case 'goto': {
      const response = await page.goto(arg, { timeout });
      return { goto: arg, status: response?.status() ?? null };
    }
    case 'fill':
      await page.getByLabel(arg.label, { exact: true }).fill(String(arg.value), { timeout });
      return { fill: arg.label };
    case 'press':
      await page.keyboard.press(arg);
      return { press: arg };
    case 'click':
      await page.getByRole(arg.role, { name: arg.name, exact: true }).click({ timeout });
      return { click: arg };
    case 'wait_for_url':
      await page.waitForURL((url) => url.href.includes(arg), { timeout });
      return { wait_for_url: arg, url: page.url() };
    case 'screenshot':
      await page.screenshot({ path: arg, fullPage: true, timeout });
      return { screenshot: arg };
    case 'expect_focus':
      return { expect_focus: arg, ...(await expectFocus(page, arg)) };
    case 'a11y':
      return { a11y: true, ...(await accessibilityAudit(page)) };
    default:
      throw new StepFailure(`unknown step ${JSON.stringify(step)}`);
  }
}

async function pageState(page) {
  try {
    return {
      url: page.url(),
      title: await page.title(),
      text: await page.evaluate(() => document.body?.innerText ?? ''),
    };
  } catch {
    return { url: page.url() };
  }
}

async function main() {
  const input = JSON.parse(await readFile(process.argv[2], 'utf8'));
  const steps = Array.isArray(input) ? input : input.steps;
  const timeout = (!Array.isArray(input) && input.timeout_ms) || 10000;
  const profile = await mkdtemp(join(tmpdir(), 'switchyard-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
  });
  const done = [];
  const consoleErrors = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${message.text()} (${message.location().url})`);
    });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    for (const [index, step] of steps.entries()) {
      try {
        done.push(await runStep(page, step, timeout));
      } catch (error) {
        const message = error instanceof StepFailure ? error.message : `${error.name}: ${error.message}`;
        return { ok: false, error: message, failed_step: index, ...(await pageState(page)), steps: done, console_errors: consoleErrors };
      }
    }
    return { ok: true, ...(await pageState(page)), steps: done, console_errors: consoleErrors };
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
}

let result;
try {
  result = await main();
} catch (error) {
  result = { ok: false, error: `${error.name}: ${error.message}`, url: null };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
