// The gateway's API page (/docs) in a real headless chromium: it loads with nothing from
// any other origin and no Content-Security-Policy violation, a token is given to
// "Authorize", and `GET /houses` is tried from the page. Prints what the page showed as one
// JSON line; crates/e2e/tests/public_api.rs decides whether that is right.
//
//   node api-page.mjs GATEWAY_URL TOKEN SCREENSHOT.png
import { chromium } from "playwright-core";

const [gateway, token, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.HOUSEBOOK_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const seen = { errors: [], foreign: [] };
try {
  const page = await browser.newPage();
  const origin = new URL(gateway).origin;
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(origin + "/") && !url.startsWith("data:")) seen.foreign.push(url);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) seen.errors.push(`${r.status()} ${r.url()}`);
  });
  page.on("console", (m) => {
    if (m.type() === "error") seen.errors.push(m.text());
  });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  const answer = await page.goto(`${gateway}/docs`);
  seen.csp = answer.headers()["content-security-policy"] || null;
  seen.title = (await page.locator(".information-container .title").first().textContent({ timeout: 20000 })).trim();

  await page.locator("button.authorize").first().click();
  await page.locator(".auth-container input").first().fill(token);
  await page.locator(".auth-btn-wrapper button.authorize").first().click();
  await page.locator(".auth-btn-wrapper button.btn-done").first().click();

  const op = page.locator(".opblock-get", { has: page.locator('.opblock-summary-path[data-path="/houses"]') }).first();
  await op.locator(".opblock-summary").first().click();
  await op.locator("button.try-out__btn").click();
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor({ timeout: 20000 });
  seen.status = (await status.textContent()).trim();
  seen.body = (await op.locator(".live-responses-table .response-col_description pre").first().textContent()).trim();
  await status.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: false });
} catch (e) {
  seen.failure = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
