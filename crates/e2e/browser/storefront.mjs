// The storefront (/app/) in a real headless chromium, against a real fleet: the seed's
// whole story as people would do it — an admin registers a house (its name full of
// markup and non-Latin text), a customer signs in with the keyboard alone, books, sees
// CONFIRMED arrive without reloading, cancels and sees the refund; another customer books
// the same nights and sees REJECTED and the refund; a third signs in and is told when
// the session expires; a booking while payment is down shows the 503 and when to retry.
// axe-core checks each page; a screenshot of each is saved.
//
// Prints what it saw as one JSON line; crates/e2e/tests/public_api.rs decides whether
// that is right (this script only fails when a step cannot be done at all).
//
//   node storefront.mjs GATEWAY_URL SCREENSHOT_DIR
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const [gateway, shots] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const origin = new URL(gateway).origin;
const WAIT = 30000;

const seen = { errors: [], foreign: [], refused: [], navigations: {}, axe: {}, steps: {} };
const browser = await chromium.launch({
  executablePath: process.env.HOUSEBOOK_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});

// A page of its own (a browser context: its own memory, so its own session) per person.
const pages = {};
async function person(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  pages[name] = page;
  seen.navigations[name] = 0;
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) seen.navigations[name] += 1; });
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(origin + "/") && !url.startsWith("data:")) seen.foreign.push(url);
  });
  // Refusals the page was answered are kept apart (the storefront shows them to its
  // person; the test decides which are expected); any other console error is an error.
  page.on("response", (r) => {
    if (r.status() >= 400) seen.refused.push(`${name} ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource: the server responded with a status of")) {
      seen.errors.push(`${name}: ${m.text()}`);
    }
  });
  page.on("pageerror", (e) => seen.errors.push(`${name}: ${e}`));
  const answer = await page.goto(`${gateway}/`);
  seen.url = page.url();
  seen.csp = answer.headers()["content-security-policy"] || null;
  return page;
}

// axe-core, run in the page through the DevTools protocol (the page's policy allows no
// injected script, and is not loosened for the test).
async function accessibility(page, name) {
  await page.evaluate(`${axeSource};0`);
  const result = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
  });
  seen.axe[name] = result;
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

async function signIn(page, user) {
  await page.getByLabel("User name", { exact: true }).fill(user);
  await page.getByLabel("Password", { exact: true }).fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText(`Signed in as ${user}`).waitFor({ timeout: WAIT });
}

// Tab until the focused element is what `want` says, as a keyboard user would.
async function tabTo(page, want, most = 80) {
  for (let i = 0; i < most; i += 1) {
    await page.keyboard.press("Tab");
    const here = await page.evaluate(() => {
      const e = document.activeElement;
      return { label: e?.getAttribute("aria-label") || e?.labels?.[0]?.textContent || e?.textContent || "", tag: e?.tagName };
    });
    if (want(here)) return here;
  }
  throw new Error("not reachable with the keyboard");
}

// Reads the page's lists again the way a person would: sign out and in.
async function showAgain(page) {
  const user = (await page.locator("#who").textContent()).replace("Signed in as ", "");
  await page.getByRole("button", { name: "Sign out" }).click();
  await signIn(page, user);
  await page.locator("#payments tbody tr").first().waitFor({ timeout: WAIT });
}

function bookingRow(page, houseName) {
  return page.locator("#bookings tbody tr").filter({ has: page.getByText(houseName, { exact: true }) });
}

async function statusOf(row) {
  return (await row.locator(".status").textContent()).trim();
}

// Waits for a booking row's status to read `want`, noting every status it read on the way.
async function watchStatus(row, want) {
  const path = [];
  const until = Date.now() + WAIT;
  while (Date.now() < until) {
    const now = await statusOf(row);
    if (path[path.length - 1] !== now) path.push(now);
    if (now === want) return path;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`status stayed ${path.join(" → ")}, never ${want}`);
}

const houseName = `<img src=x onerror="window.pwned=1"> 제주 한옥 "Ocean" & Co ✓`;
try {
  // --- bob signs in first: his session expires while the others go on (short tokens).
  const bob = await person("bob");
  await shot(bob, "sign-in");
  await accessibility(bob, "sign-in");
  await signIn(bob, "bob");

  // --- the admin registers a house.
  const admin = await person("admin");
  await signIn(admin, "admin");
  await admin.getByLabel("House name", { exact: true }).fill(houseName);
  await admin.getByLabel("Price per night (KRW)", { exact: true }).fill("150");
  await admin.getByRole("button", { name: "Register" }).click();
  await admin.getByRole("status").filter({ hasText: "Registered" }).waitFor({ timeout: WAIT });
  const cell = admin.locator("#houses tbody td strong", { hasText: "Ocean" }).first();
  await cell.waitFor({ timeout: WAIT });
  seen.steps.houseShownAs = await cell.textContent();
  seen.steps.markupRan = await admin.evaluate(() => Boolean(globalThis.pwned) || document.querySelectorAll("#houses img").length > 0);
  await accessibility(admin, "admin");
  await shot(admin, "admin");

  // --- alice, with the keyboard alone: sign in, choose nights, book.
  const alice = await person("alice");
  await tabTo(alice, (h) => h.tag === "INPUT" && h.label.includes("User name"));
  await alice.keyboard.type("alice");
  await alice.keyboard.press("Tab");
  await alice.keyboard.type("alice");
  await alice.keyboard.press("Enter");
  await alice.getByText("Signed in as alice").waitFor({ timeout: WAIT });
  seen.steps.focusAfterSignIn = await alice.evaluate(() => document.activeElement?.id);
  const free = alice.locator("#houses tbody tr", { hasText: "Ocean" }).first();
  await free.waitFor({ timeout: WAIT });
  seen.steps.availabilityBefore = (await free.locator(".status").textContent()).trim();
  await tabTo(alice, (h) => h.label.startsWith("Book <img"));
  const pressed = Date.now();
  await alice.keyboard.press("Enter");
  const hers = bookingRow(alice, houseName);
  await hers.waitFor({ timeout: WAIT });
  seen.steps.aliceStatuses = await watchStatus(hers, "CONFIRMED");
  // A figure, not a check: from the key press to CONFIRMED on the page, under the siege.
  seen.figures = { bookedToConfirmedOnThePageMs: Date.now() - pressed };
  await alice.locator("#notifications li", { hasText: "is confirmed" }).waitFor({ timeout: WAIT });
  seen.steps.aliceLive = await alice.locator("#live-state").textContent();
  await accessibility(alice, "customer");
  await shot(alice, "customer-confirmed");

  // --- bob books the same nights: rejected, and refunded.
  await bob.getByRole("button", { name: "Show availability" }).click();
  const taken = bob.locator("#houses tbody tr", { hasText: "Ocean" }).first();
  await taken.locator(".status", { hasText: "taken" }).waitFor({ timeout: WAIT });
  seen.steps.availabilityForBob = (await taken.locator(".status").textContent()).trim();
  await taken.getByRole("button").click();
  const his = bookingRow(bob, houseName);
  await his.waitFor({ timeout: WAIT });
  seen.steps.bobStatuses = await watchStatus(his, "REJECTED");
  await his.locator(".reason", { hasText: "booked these nights first" }).waitFor({ timeout: WAIT });
  seen.steps.bobReason = (await his.locator(".reason").textContent()).trim();
  seen.steps.bobNotice = await bob.locator("#notice").textContent();
  await bob.locator("#notifications li", { hasText: "could not be confirmed" }).waitFor({ timeout: WAIT });
  await bob.locator("#payments tbody .status", { hasText: "PAYMENT CANCELED" }).first().waitFor({ timeout: WAIT });
  seen.steps.bobPayments = await bob.locator("#payments tbody .status").allTextContents();
  seen.steps.bobSeesAlices = await bob.locator("#bookings tbody tr").count();
  await shot(bob, "customer-rejected");

  // --- alice cancels: refunded, and the nights are free again.
  await hers.getByRole("button", { name: /Cancel booking/ }).click();
  seen.steps.aliceAfterCancel = await watchStatus(hers, "BOOK CANCELED");
  await alice.locator("#payments tbody .status", { hasText: "PAYMENT CANCELED" }).first().waitFor({ timeout: WAIT });
  await alice.locator("#notifications li", { hasText: "is refunded" }).first().waitFor({ timeout: WAIT });
  seen.steps.alicePayments = await alice.locator("#payments tbody .status").allTextContents();
  await shot(alice, "customer-cancelled");

  // --- the admin sees every booking.
  await admin.reload();
  await signIn(admin, "admin");
  await admin.locator("#bookings tbody tr").nth(1).waitFor({ timeout: WAIT });
  seen.steps.adminBookings = await admin.locator("#bookings tbody tr .status").allTextContents();
  // A long list shows a page, and more on demand.
  seen.steps.adminRowsFirst = await admin.locator("#bookings tbody tr").count();
  await admin.getByRole("button", { name: "Show more bookings" }).click();
  await admin.locator("#bookings tbody tr").nth(seen.steps.adminRowsFirst).waitFor({ timeout: WAIT });
  seen.steps.adminRowsMore = await admin.locator("#bookings tbody tr").count();

  // --- payment down: the booking is refused with 503, and the page says when to retry.
  const token = await admin.evaluate(async () => {
    const r = await fetch("/oauth/token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ grant_type: "password", username: "admin", password: "admin" }) });
    return (await r.json()).access_token;
  });
  const faults = async (failureRate) => admin.evaluate(async ([t, rate]) => {
    const r = await fetch("/faults", { method: "PUT", headers: { Authorization: `Bearer ${t}`, "Content-Type": "application/json" }, body: JSON.stringify({ failureRate: rate }) });
    return r.status;
  }, [token, failureRate]);
  seen.steps.faultsSet = await faults(1);
  await alice.locator("#houses tbody tr", { hasText: "Ocean" }).first().getByRole("button").click();
  const problem = alice.getByRole("alert");
  await problem.waitFor({ timeout: WAIT });
  seen.steps.paymentDown = await problem.textContent();
  await problem.scrollIntoViewIfNeeded();
  await shot(alice, "customer-payment-down");
  await showAgain(alice);
  seen.steps.alicePaymentsAfterDown = await alice.locator("#payments tbody tr").count();
  seen.steps.faultsCleared = await faults(0);

  // --- bob's session ends by itself: he is told, and asked to sign in again.
  await bob.getByText("Your session has expired").waitFor({ timeout: 150000 });
  seen.steps.bobExpired = await bob.getByRole("alert").textContent();
  seen.steps.bobSignInShown = await bob.getByRole("button", { name: "Sign in" }).isVisible();
  await shot(bob, "session-expired");
} catch (e) {
  seen.failure = String(e.stack || e);
  // What each page was telling its person when it failed.
  seen.shown = {};
  for (const [name, page] of Object.entries(pages)) {
    seen.shown[name] = await page.locator("#notice:visible, #problem:visible").allTextContents().catch(String);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
