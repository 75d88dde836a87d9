// The housebook storefront: plain JavaScript, no framework and no build step, served by
// the gateway under a Content-Security-Policy that allows no inline script and no other
// origin. Everything shown is put into the page as text (textContent), never as HTML, so
// a house named "<img onerror=…>" is shown as that text.
//
// The token lives in this module's memory only: not in localStorage, sessionStorage or a
// cookie. A reload signs the person out; no other page, script or request of another
// site can ever present it (no ambient credential: nothing to forge a request with).
// The live stream is read with fetch(), which (unlike EventSource) can send the token.

const session = { token: null, user: null, admin: false, expires: 0 };
const seen = new Set(); // notification ids shown
const MAX_SHOWN = 200; // notifications and bookings kept on the page, newest first
const PAGE = 10; // rows a list shows at first, and each "Show more" adds
// How far ahead bookings open (book's HOUSEBOOK_BOOKING__HORIZON_DAYS by default): the
// date inputs offer no day outside it; a fleet set otherwise answers 422, shown in words.
const HORIZON_DAYS = 730;
// Prices are Korean won, as in the seed's houses (200 000 a night).
const money = new Intl.NumberFormat("ko-KR", { style: "currency", currency: "KRW" });
const houseNames = new Map(); // house id -> name, for payments (which carry the id only)
const reasons = new Map(); // booking id -> why it was rejected (from the view)
const stays = new Map(); // booking id -> the booking, for the notifications' words
const shown = { houses: 0, bookings: 0, payments: 0, notifications: PAGE * 2 }; // how many each list shows
let awaiting = null; // the booking the notice says is waiting for the house
let lastEventId = null;
let stream = null; // AbortController of the open stream

const $ = (id) => document.getElementById(id);

// ---- calls -----------------------------------------------------------------------------

class Problem extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new Problem(0, "network", "The service could not be reached.", null);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const retry = Number.parseInt(res.headers.get("Retry-After") || "", 10);
    throw new Problem(res.status, data?.error || "error", data?.message || res.statusText, Number.isFinite(retry) ? retry : null);
  }
  return data;
}

// What a person should read for a refusal.
function explain(p, doing) {
  switch (p.status) {
    case 0: return `${doing}: the service could not be reached. Check the connection and try again.`;
    case 401: return "Your session has expired. Please sign in again.";
    case 403: return `${doing}: you are not allowed to do that.`;
    case 404: return `${doing}: it does not exist (any more).`;
    case 400: return `${doing}: the request was not understood (${p.message}).`;
    case 408: return `${doing}: it took too long to arrive. Please try again.`;
    case 409: return `${doing}: ${p.message}`;
    case 413: return `${doing}: that is too long.`;
    case 422: return `${doing}: ${p.message}`;
    case 429: return `${doing}: ${p.message}. Please wait ${p.retryAfter ?? 1} s and try again.`;
    case 503: return `${doing} is not possible right now: ${p.message} (retry in ${p.retryAfter ?? 1} s).`;
    case 502: case 504: return `${doing}: the service did not answer in time. Please try again in a moment.`;
    default: return `${doing}: something went wrong (${p.status}). Please try again.`;
  }
}

function say(text) {
  $("problem").hidden = true;
  $("notice").textContent = text;
  $("notice").hidden = false;
}

function complain(err, doing) {
  if (!(err instanceof Problem)) {
    console.error(err);
    err = new Problem(-1, "error", String(err), null);
  }
  if (err.status === 401 && session.token) {
    signOut();
    $("problem").textContent = explain(err, doing);
    $("problem").hidden = false;
    return;
  }
  $("notice").hidden = true;
  $("problem").textContent = explain(err, doing);
  $("problem").hidden = false;
}

// ---- helpers ---------------------------------------------------------------------------

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// A table row of `cells` ([label, content] each: the label names the column on a phone,
// where each row is a card).
function row(cells) {
  const tr = document.createElement("tr");
  for (const [label, c] of cells) {
    const td = document.createElement("td");
    if (label) td.dataset.label = label;
    if (c instanceof Node) td.append(c); else td.textContent = c ?? "";
    tr.append(td);
  }
  return tr;
}

function amount(n) {
  return el("span", money.format(n), "money");
}

const dayFormat = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
function day(iso) {
  return dayFormat.format(new Date(`${iso}T00:00:00Z`));
}

// A stay as a person names it: the house and the dates; the booking's id on demand.
function stay(houseName, checkIn, checkOut, bookId) {
  const box = el("div");
  box.append(el("strong", houseName), el("span", ` · ${day(checkIn)} – ${day(checkOut)}`));
  if (bookId) {
    const id = el("details", undefined, "stay-id");
    id.append(el("summary", "Booking id"), el("code", bookId));
    box.append(id);
  }
  return box;
}

// The empty word of a list, and its "Show more" button when there may be more.
function listState(name, count, more) {
  $(`${name}-empty`).hidden = count > 0;
  const button = $(`${name}-more`);
  if (button) button.hidden = !more;
}

function isoDay(offset) {
  const d = new Date();
  d.setDate(d.getDate() + offset);
  return d.toISOString().slice(0, 10);
}

function claims(token) {
  const part = token.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
}

function statusCell(status) {
  return el("span", status.replace("_", " "), `status ${status}`);
}

// Why a booking was rejected, in words (the view's reason codes; book's own reasons are
// sentences already).
const REASONS = {
  NIGHTS_TAKEN: "Someone else booked these nights first; your payment is refunded.",
  UNKNOWN_HOUSE: "The house no longer exists; your payment is refunded.",
  INVALID_STAY: "These dates cannot be booked; your payment is refunded.",
};
function reasonText(code) {
  return REASONS[code] || (code ? `${code.charAt(0).toUpperCase()}${code.slice(1)}.` : "Your payment is refunded.");
}

// ---- sign in and out -------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const username = $("username").value;
  const password = $("password").value;
  try {
    const t = await call("POST", "/oauth/token", { grant_type: "password", username, password });
    const c = claims(t.access_token);
    Object.assign(session, { token: t.access_token, user: c.sub, admin: (c.roles || []).includes("ADMIN"), expires: c.exp });
  } catch (err) {
    if (err instanceof Problem && err.status === 400) {
      $("problem").textContent = "Sign in: that user name and password do not match.";
      $("problem").hidden = false;
    } else complain(err, "Sign in");
    return;
  }
  $("password").value = "";
  $("problem").hidden = true;
  $("who").textContent = `Signed in as ${session.user}${session.admin ? " (admin)" : ""}`;
  $("who").hidden = false;
  $("sign-out").hidden = false;
  $("sign-in").hidden = true;
  $("signed-in").hidden = false;
  $("admin").hidden = !session.admin;
  say(`Welcome, ${session.user}.`);
  $("houses-title").focus();
  listen();
  // The bookings first: the notifications name their stays.
  await Promise.all([showHouses(), showBookings(), showPayments()]);
  await showNotifications();
  watchAvailability();
}

function signOut() {
  stream?.abort();
  stream = null;
  Object.assign(session, { token: null, user: null, admin: false, expires: 0 });
  seen.clear();
  lastEventId = null;
  dirty.clear();
  paymentsDirty = false;
  availabilityDirty = false;
  clearInterval(availabilityTimer);
  awaiting = null;
  houseNames.clear();
  reasons.clear();
  stays.clear();
  Object.assign(shown, { houses: 0, bookings: 0, payments: 0, notifications: PAGE * 2 });
  for (const id of ["houses", "bookings", "payments"]) $(id).tBodies[0].replaceChildren();
  $("notifications").replaceChildren();
  $("who").hidden = true;
  $("sign-out").hidden = true;
  $("signed-in").hidden = true;
  $("sign-in").hidden = false;
  $("notice").hidden = true;
  $("username").focus();
}

// ---- houses ----------------------------------------------------------------------------

function chosenNights() {
  return { checkIn: $("check-in").value, checkOut: $("check-out").value };
}

// The date inputs offer today to the booking horizon only; check-out after check-in.
function boundDates() {
  const checkIn = $("check-in");
  const checkOut = $("check-out");
  checkIn.min = isoDay(0);
  checkIn.max = isoDay(HORIZON_DAYS);
  const after = checkIn.value && checkIn.value >= checkIn.min ? checkIn.value : isoDay(0);
  const next = new Date(`${after}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  checkOut.min = next.toISOString().slice(0, 10);
  checkOut.max = isoDay(HORIZON_DAYS + 1);
  if (checkOut.value && checkOut.value < checkOut.min) checkOut.value = checkOut.min;
}

// The "Chosen nights" cell of one house: free, taken, or why it cannot say.
async function availability(h, checkIn, checkOut) {
  let free;
  try {
    const q = new URLSearchParams({ houseId: h.id, checkIn, checkOut });
    free = await call("GET", `/availability?${q}`);
  } catch (err) {
    // 422: dates it cannot answer for; 404: a house registered a moment ago, which
    // the availability view has not heard of yet.
    if (!(err instanceof Problem) || ![404, 422].includes(err.status)) throw err;
    free = err.status;
  }
  return free === 422 ? el("span", "choose valid dates")
    : free === 404 ? el("span", "not known yet; it will show in a moment")
    : free.available ? el("span", "free", "status free")
    : el("span", `taken (${free.takenNights.length} of the nights)`, "status taken");
}

function houseRow(h, state) {
  const { checkIn, checkOut } = chosenNights();
  const name = el("div");
  name.append(el("strong", h.houseName));
  if (h.houseDescription) name.append(el("span", h.houseDescription, "description"));
  const book = el("button", "Book");
  book.type = "button";
  book.setAttribute("aria-label", `Book ${h.houseName} from ${checkIn} to ${checkOut}`);
  book.addEventListener("click", () => bookHouse(h, book));
  const tr = row([["House", name], ["Price per night", amount(h.housePrice)], ["Chosen nights", state], [null, book]]);
  tr.dataset.house = String(h.id);
  tr.cells[2].classList.add("avail");
  return tr;
}

// The houses, newest first, PAGE more each time "Show more" is pressed; with `more`
// unset the ones shown are read again (new dates).
async function showHouses(event, more = false) {
  event?.preventDefault?.();
  boundDates();
  const { checkIn, checkOut } = chosenNights();
  const limit = more ? shown.houses + PAGE : Math.max(shown.houses, PAGE);
  try {
    const houses = await call("GET", `/houses?limit=${limit + 1}&order=newest`);
    const page = houses.slice(0, limit);
    for (const h of page) houseNames.set(h.id, h.houseName);
    const rows = await Promise.all(page.map(async (h) => houseRow(h, await availability(h, checkIn, checkOut))));
    $("houses").tBodies[0].replaceChildren(...rows);
    shown.houses = limit;
    listState("houses", page.length, houses.length > limit);
    $("houses-empty").textContent = session.admin ? "No houses yet: register the first one below." : "No houses yet.";
  } catch (err) {
    complain(err, "Showing the houses");
  }
}

// Every house's "Chosen nights" read again in place (focus and rows stay where they
// are): after a notification that a booking moved, and every AVAILABILITY_MS for what
// other people booked.
const AVAILABILITY_MS = 15000;
let availabilityDirty = false;
let availabilityTimer = null;
async function refreshAvailability() {
  const { checkIn, checkOut } = chosenNights();
  const token = session.token; // a sign-out on the way ends the round
  for (const tr of [...$("houses").tBodies[0].rows]) {
    if (!token || session.token !== token) return;
    const h = { id: Number(tr.dataset.house) };
    try {
      const state = await availability(h, checkIn, checkOut);
      tr.querySelector(".avail")?.replaceChildren(state);
    } catch (err) {
      if (session.token === token) complain(err, "Updating availability");
      return;
    }
  }
}
function watchAvailability() {
  clearInterval(availabilityTimer);
  availabilityTimer = setInterval(() => { if (session.token && !document.hidden) refreshAvailability(); }, AVAILABILITY_MS);
}

async function registerHouse(event) {
  event.preventDefault();
  const houseName = $("house-name").value;
  const housePrice = Number($("house-price").value);
  const description = $("house-description").value.trim();
  const body = { houseName, housePrice };
  if (description) body.houseDescription = description;
  try {
    const h = await call("POST", "/houses", body);
    $("house-form").reset();
    say(`Registered ${h.houseName}.`);
    await showHouses(undefined, true);
  } catch (err) {
    complain(err, "Registering the house");
  }
}

// ---- bookings --------------------------------------------------------------------------

function bookingRow(b) {
  houseNames.set(b.houseId, b.houseName);
  stays.set(b.id, b);
  const cancel = el("button", "Cancel", "secondary");
  cancel.type = "button";
  cancel.setAttribute("aria-label", `Cancel booking of ${b.houseName} from ${b.checkIn}`);
  cancel.hidden = !["BOOKED", "CONFIRMED"].includes(b.status);
  cancel.addEventListener("click", () => cancelBooking(b, cancel));
  const status = el("div");
  status.append(statusCell(b.status));
  if (b.status === "REJECTED") {
    const why = el("span", reasons.has(b.id) ? reasonText(reasons.get(b.id)) : "Your payment is refunded.", "reason");
    status.append(why);
    if (!reasons.has(b.id)) explainRejection(b.id, why);
  }
  const tr = row([["Stay", stay(b.houseName, b.checkIn, b.checkOut, b.id)], ["Total", amount(b.housePrice)], ["Status", status], [null, cancel]]);
  tr.dataset.book = b.id;
  return tr;
}

// Why a booking was rejected: the view's reason (book's answer has none).
async function explainRejection(id, into) {
  try {
    const v = await call("GET", `/mypages/${encodeURIComponent(id)}`);
    if (v.reason) {
      reasons.set(id, v.reason);
      into.textContent = reasonText(v.reason);
    }
  } catch {
    // The view may not have it yet: the words stay general.
  }
}

function putBooking(b) {
  const body = $("bookings").tBodies[0];
  const old = [...body.rows].find((r) => r.dataset.book === b.id);
  const fresh = bookingRow(b);
  if (old) old.replaceWith(fresh);
  else {
    body.prepend(fresh);
    while (body.rows.length > MAX_SHOWN) body.lastElementChild.remove();
  }
  listState("bookings", body.rows.length, !$("bookings-more").hidden);
  // The notice that said this booking was waiting for the house says how it ended.
  if (awaiting === b.id && b.status !== "BOOKED") {
    awaiting = null;
    const what = `${b.houseName}, ${day(b.checkIn)} – ${day(b.checkOut)}`;
    if (b.status === "CONFIRMED") say(`Your stay at ${what} is confirmed.`);
    else if (b.status === "REJECTED") say(`Your booking of ${what} could not be confirmed. ${reasonText(reasons.get(b.id))}`);
    else $("notice").hidden = true;
  }
}

async function showBookings(more = false) {
  const limit = more ? shown.bookings + PAGE : Math.max(shown.bookings, PAGE);
  try {
    const list = await call("GET", `/books?limit=${limit + 1}&order=newest`);
    const page = list.slice(0, limit);
    $("bookings").tBodies[0].replaceChildren(...page.map(bookingRow));
    shown.bookings = limit;
    listState("bookings", page.length, list.length > limit);
  } catch (err) {
    complain(err, "Showing the bookings");
  }
}

async function bookHouse(h, button) {
  const { checkIn, checkOut } = chosenNights();
  button.disabled = true;
  try {
    const b = await call("POST", "/books", { houseId: h.id, checkIn, checkOut });
    awaiting = b.id;
    say(`Booked ${b.houseName}, ${day(b.checkIn)} – ${day(b.checkOut)}: paid ${money.format(b.housePrice)}, waiting for the house to confirm.`);
    putBooking(b);
    await showPayments();
  } catch (err) {
    complain(err, `Booking ${h.houseName}`);
  } finally {
    button.disabled = false;
  }
}

async function cancelBooking(b, button) {
  button.disabled = true;
  try {
    const done = await call("POST", `/books/${encodeURIComponent(b.id)}/cancel`);
    putBooking(done);
    say(`Cancelled the booking of ${done.houseName}; the payment is refunded.`);
    await showPayments();
  } catch (err) {
    button.disabled = false;
    complain(err, "Cancelling the booking");
  }
}

// ---- payments and notifications --------------------------------------------------------

async function showPayments(more = false) {
  const limit = more ? shown.payments + PAGE : Math.max(shown.payments, PAGE);
  try {
    const list = await call("GET", `/payments?limit=${limit + 1}&order=newest`);
    const page = list.slice(0, limit);
    $("payments").tBodies[0].replaceChildren(...page.map((p) =>
      row([["Stay", stay(houseNames.get(p.houseId) ?? `House ${p.houseId}`, p.checkIn, p.checkOut, p.bookId)],
        ["Amount", amount(p.housePrice)], ["Status", statusCell(p.status)]])));
    shown.payments = limit;
    listState("payments", page.length, list.length > limit);
  } catch (err) {
    complain(err, "Showing the payments");
  }
}

// A notification in words about the stay it concerns (its house and dates) when the page
// knows that booking; else the service's own message.
function notificationText(n) {
  const b = stays.get(n.bookId);
  if (!b) return n.message;
  const what = `${b.houseName}, ${day(b.checkIn)} – ${day(b.checkOut)}`;
  switch (n.kind) {
    case "PAYMENT_RECEIVED": return `We received your payment of ${money.format(b.housePrice)} for ${what}.`;
    case "BOOKING_CONFIRMED": return `Your stay at ${what} is confirmed.`;
    case "BOOKING_REJECTED": return `Your booking of ${what} could not be confirmed.`;
    case "BOOKING_CANCELED": return `Your booking of ${what} is cancelled.`;
    case "PAYMENT_REFUNDED": return `Your payment of ${money.format(b.housePrice)} for ${what} is refunded.`;
    default: return n.message;
  }
}

function addNotification(n) {
  if (seen.has(n.id)) return false;
  seen.add(n.id);
  const li = el("li");
  const when = el("time", new Date(n.occurredAt).toLocaleString());
  when.dateTime = n.occurredAt;
  li.append(when, el("span", notificationText(n)));
  li.dataset.kind = n.kind;
  const list = $("notifications");
  list.prepend(li);
  while (list.children.length > MAX_SHOWN) list.lastElementChild.remove();
  showNotificationsUpTo(shown.notifications);
  return true;
}

// The newest `count` notifications kept on the page are shown; "Show more" shows more.
function showNotificationsUpTo(count) {
  shown.notifications = count;
  const items = [...$("notifications").children];
  items.forEach((li, i) => { li.hidden = i >= count; });
  listState("notifications", items.length, items.length > count);
}

async function showNotifications() {
  try {
    // Newest first from the API; each is put on top, so the oldest of them goes first.
    const list = await call("GET", `/notifications?limit=${MAX_SHOWN}&order=newest`);
    for (const n of list.reverse()) addNotification(n);
    showNotificationsUpTo(shown.notifications);
  } catch (err) {
    complain(err, "Showing the notifications");
  }
}

// ---- the live stream -------------------------------------------------------------------

function liveState(text) {
  $("live-state").textContent = `Live updates: ${text}`;
}

// Reads /notifications/stream for as long as the person is signed in: each event is
// shown, and the booking it is about is read again; when the stream ends (idle, the
// service restarting) it reconnects after the last event seen.
async function listen() {
  const mine = new AbortController();
  stream = mine;
  let wait = 1;
  let reconnected = false;
  while (stream === mine) {
    try {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const res = await fetch("/notifications/stream", { headers, signal: mine.signal });
      if (res.status === 401) {
        complain(new Problem(401, "unauthorized", "expired", null), "Live updates");
        return;
      }
      if (!res.ok) {
        const retry = Number.parseInt(res.headers.get("Retry-After") || "", 10);
        wait = Number.isFinite(retry) ? retry : Math.min(wait * 2, 30);
        liveState(`paused (${res.status}); retrying in ${wait} s`);
      } else {
        liveState("on");
        wait = 1;
        // A reconnect with no event seen yet has no Last-Event-ID to resume from: what was
        // stored while the stream was down is read from the list instead.
        if (reconnected && !lastEventId) await catchUp();
        reconnected = true;
        await readEvents(res.body, mine);
        liveState("reconnecting…");
      }
    } catch (err) {
      if (mine.signal.aborted) return;
      liveState("reconnecting…");
    }
    await new Promise((r) => setTimeout(r, wait * 1000));
  }
}

// The newest notifications not shown yet, each handled as if it had come live.
async function catchUp() {
  try {
    const list = await call("GET", `/notifications?limit=${PAGE * 5}&order=newest`);
    for (const n of list.reverse()) await onNotification(n);
  } catch (err) {
    complain(err, "Live updates");
  }
}

async function readEvents(body, mine) {
  const reader = body.getReader();
  const text = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done || stream !== mine) return;
    buffer += text.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const ev = { id: null, event: "message", data: [] };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const at = line.indexOf(":");
        const field = at < 0 ? line : line.slice(0, at);
        const v = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
        if (field === "id") ev.id = v;
        else if (field === "event") ev.event = v;
        else if (field === "data") ev.data.push(v);
      }
      if (ev.data.length === 0) continue;
      if (ev.id) lastEventId = ev.id;
      if (ev.event === "notification") await onNotification(JSON.parse(ev.data.join("\n")));
    }
  }
}

// What a notification changes is read again, but not once per notification: under load
// (an admin's stream carries everyone's) they are gathered and read together at most
// every REFRESH_MS, a whole list at once when many bookings moved.
const REFRESH_MS = 250;
const dirty = new Set();
let paymentsDirty = false;
let refreshing = null;

async function onNotification(n) {
  if (!addNotification(n)) return;
  dirty.add(n.bookId);
  if (n.kind.startsWith("PAYMENT_") || n.kind === "BOOKING_REJECTED") paymentsDirty = true;
  // A stay confirmed or given up changes which nights are free.
  if (["BOOKING_CONFIRMED", "BOOKING_CANCELED", "BOOKING_REJECTED"].includes(n.kind)) availabilityDirty = true;
  refreshing ??= setTimeout(refresh, REFRESH_MS);
}

async function refresh() {
  const ids = [...dirty];
  const payments = paymentsDirty;
  const nights = availabilityDirty;
  dirty.clear();
  paymentsDirty = false;
  availabilityDirty = false;
  try {
    if (ids.length > PAGE) await showBookings();
    else {
      for (const id of ids) {
        try {
          putBooking(await call("GET", `/books/${encodeURIComponent(id)}`));
        } catch (err) {
          if (!(err instanceof Problem) || err.status !== 404) throw err;
        }
      }
    }
    if (payments) await showPayments();
    if (nights) {
      // The view (availability) and the feed (notifications) follow the events apart:
      // asked again a moment later, a view still behind has caught up.
      await refreshAvailability();
      setTimeout(() => { if (session.token) refreshAvailability(); }, 2000);
    }
  } catch (err) {
    complain(err, "Updating the bookings");
  } finally {
    refreshing = null;
    if (dirty.size > 0 || paymentsDirty || availabilityDirty) refreshing = setTimeout(refresh, REFRESH_MS);
  }
}

// ---- start -----------------------------------------------------------------------------

function start() {
  $("check-in").value = isoDay(7);
  $("check-out").value = isoDay(9);
  boundDates();
  $("check-in").addEventListener("change", boundDates);
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("dates-form").addEventListener("submit", showHouses);
  $("house-form").addEventListener("submit", registerHouse);
  $("houses-more").addEventListener("click", () => showHouses(undefined, true));
  $("bookings-more").addEventListener("click", () => showBookings(true));
  $("payments-more").addEventListener("click", () => showPayments(true));
  $("notifications-more").addEventListener("click", () => showNotificationsUpTo(shown.notifications + PAGE * 2));
}

start();
