// The storefront on a phone (390 × 844, as an iPhone 12–15 shows it) against a fleet
// that starts empty: what a first visitor sees before anything exists, then an admin's
// first house (a long name and a description), a customer's booking of it — the page
// never wider than the screen — and availability that follows the live stream: once the
// booking is CONFIRMED the house's nights read "taken" with no click. axe-core checks each
// page; a screenshot of each is saved.
//
// Prints what it saw as one JSON line; crates/e2e/tests/public_api.rs decides whether
// that is right (this script only fails when a step cannot be done at all).
//
//   node phone.mjs GATEWAY_URL SCREENSHOT_DIR
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const [gateway, shots] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const WAIT = 30000;
const PHONE = { width: 390, height: 844 };

const seen = { errors: [], axe: {}, steps: {}, widths: {} };
const browser = await chromium.launch({
  executablePath: process.env.HOUSEBOOK_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});

async function phone(name) {
  const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  page.on("pageerror", (e) => seen.errors.push(`${name}: ${e}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource: the server responded with a status of")) {
      seen.errors.push(`${name}: ${m.text()}`);
    }
  });
  await page.goto(`${gateway}/`);
  return page;
}

async function signIn(page, user) {
  await page.getByLabel("User name", { exact: true }).fill(user);
  await page.getByLabel("Password", { exact: true }).fill(user);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText(`Signed in as ${user}`).waitFor({ timeout: WAIT });
}

// How wide the page is laid out against the screen, and anything sticking out of it.
async function width(page, name) {
  seen.widths[name] = await page.evaluate(() => {
    const screen = document.documentElement.clientWidth;
    // What a person can see: not what is clipped away for screen readers only.
    const out = [...document.querySelectorAll("body *")]
      .filter((e) => !e.closest("thead, .sr-only"))
      .filter((e) => e.getClientRects().length > 0 && e.getBoundingClientRect().right > screen + 1)
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`);
    return { screen, page: document.documentElement.scrollWidth, out };
  });
}

async function accessibility(page, name) {
  await page.evaluate(`${axeSource};0`);
  seen.axe[name] = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
  });
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

const houseName = "Hanok by the Seongsan Ilchulbong Tuff Cone, with a courtyard";
const description = "Three rooms around a courtyard; the sunrise peak a ten-minute walk away.\nNo smoking.";
try {
  // --- the empty fleet: every list says so.
  const alice = await phone("alice");
  await width(alice, "sign-in");
  await signIn(alice, "alice");
  await alice.locator("#houses-empty").waitFor({ timeout: WAIT });
  seen.steps.empty = {};
  for (const list of ["houses", "bookings", "payments", "notifications"]) {
    await alice.locator(`#${list}-empty`).waitFor({ state: "visible", timeout: WAIT });
    seen.steps.empty[list] = (await alice.locator(`#${list}-empty`).textContent()).trim();
  }
  seen.steps.checkInMin = await alice.locator("#check-in").getAttribute("min");
  seen.steps.checkOutMin = await alice.locator("#check-out").getAttribute("min");
  await width(alice, "empty");
  await accessibility(alice, "empty");
  await shot(alice, "phone-empty");

  // --- the admin registers the first house, on a phone too.
  const admin = await phone("admin");
  await signIn(admin, "admin");
  const adminEmpty = admin.locator("#houses-empty", { hasText: "register" });
  await adminEmpty.waitFor({ timeout: WAIT });
  seen.steps.adminEmpty = (await adminEmpty.textContent()).trim();
  await admin.getByLabel("House name", { exact: true }).fill(houseName);
  await admin.getByLabel("Price per night (KRW)", { exact: true }).fill("180000");
  await admin.getByLabel("Description", { exact: true }).fill(description);
  await admin.getByRole("button", { name: "Register" }).click();
  await admin.getByRole("status").filter({ hasText: "Registered" }).waitFor({ timeout: WAIT });
  await width(admin, "admin");
  await accessibility(admin, "admin");
  await shot(admin, "phone-admin");

  // --- alice asks again and books it; its row, and the Book button, fit the screen.
  await alice.getByRole("button", { name: "Show availability" }).click();
  const house = alice.locator("#houses tbody tr", { hasText: "Seongsan" }).first();
  await house.waitFor({ timeout: WAIT });
  await house.locator(".status.free").waitFor({ timeout: WAIT });
  seen.steps.description = (await house.locator(".description").textContent()).trim();
  seen.steps.price = (await house.locator(".money").textContent()).trim();
  const book = house.getByRole("button", { name: /^Book / });
  const box = await book.boundingBox();
  seen.steps.bookButton = { left: box.x, right: box.x + box.width };
  await width(alice, "houses");
  await book.click();
  await alice.getByRole("status").filter({ hasText: "waiting for the house" }).waitFor({ timeout: WAIT });
  seen.steps.noticeWhileWaiting = (await alice.getByRole("status").textContent()).trim();
  const booking = alice.locator("#bookings tbody tr").first();
  await booking.locator(".status.CONFIRMED").waitFor({ timeout: WAIT }).catch(async (e) => {
    throw new Error(`${e.message}\nthe booking row read: ${await booking.textContent()}; live: ${await alice.locator("#live-state").textContent()}`);
  });
  seen.steps.bookingLabel = (await booking.locator("td").first().locator("strong, span").allTextContents()).join("");
  seen.steps.bookingIdShown = await booking.locator("code").isVisible();
  seen.steps.total = (await booking.locator(".money").textContent()).trim();
  // No click from here: the live stream turns the house's nights taken, and the notice
  // says the stay is confirmed.
  await house.locator(".status.taken").waitFor({ timeout: WAIT });
  seen.steps.availabilityAfter = (await house.locator(".avail").textContent()).trim();
  await alice.getByRole("status").filter({ hasText: "is confirmed" }).waitFor({ timeout: WAIT });
  seen.steps.noticeAfter = (await alice.getByRole("status").textContent()).trim();
  seen.steps.payment = (await alice.locator("#payments tbody tr").first().textContent()).trim();
  await width(alice, "booked");
  await accessibility(alice, "booked");
  await shot(alice, "phone-booked");
} catch (e) {
  seen.failure = String(e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
