// Render Adaptive Cards with Microsoft's renderer (npm "adaptivecards") in headless Chromium.
//
//   node render.mjs JOBS.json
//
// JOBS.json: {"chromium": "/usr/bin/chromium", "width": 420,
//             "jobs": [{"name": "help", "card": "/abs/help.json", "png": "/abs/help.png"}, ...]}
// Prints one JSON array on stdout, one entry per job, in order:
//   {"name", "events": [{"phase", "kind", "message"}], "overflow": [{"element", "text", ...}],
//    "width", "height"}
// "events" are the renderer's parse, validation and render warnings and errors; "overflow" lists the
// elements whose content is wider than the card, sticks out of it, or is cut off to fit.
// Exit status: 0 when every card rendered (whatever it found), 1 when rendering itself failed.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const acDist = dirname(require.resolve("adaptivecards/dist/adaptivecards.min.js"));
const hostConfig = JSON.parse(readFileSync(join(here, "host-config.json"), "utf8"));

// A plain page: the library's default stylesheet and a white message column of a fixed width,
// in a frame that the screenshot takes. The card clips what is wider than the column, so the
// picture shows it cut off; measureInPage names it.
function pageHtml(width) {
  return `<!doctype html><html><head><meta charset="utf-8">
<style>${readFileSync(join(acDist, "adaptivecards.css"), "utf8")}</style>
<style>
  html, body { margin: 0; background: #f0f0f0; }
  #frame { display: inline-block; padding: 12px; }
  #card { width: ${width}px; background: #ffffff; border: 1px solid #dedede; border-radius: 8px;
          box-sizing: content-box; }
</style></head><body><div id="frame"><div id="card"></div></div></body></html>`;
}

// Runs in the page: parse, validate and render one card into the column; returns the events.
function renderInPage({ card, hostConfig }) {
  const AC = window.AdaptiveCards;
  const events = [];
  const phaseName = (phase) => AC.ValidationPhase[phase] ?? String(phase);
  const kindName = (kind) => AC.ValidationEvent[kind] ?? String(kind);

  const adaptiveCard = new AC.AdaptiveCard();
  adaptiveCard.hostConfig = new AC.HostConfig(hostConfig);
  const context = new AC.SerializationContext(AC.Versions.v1_3);
  adaptiveCard.parse(card, context);
  for (let i = 0; i < context.eventCount; i++) {
    const e = context.getEventAt(i);
    events.push({ phase: phaseName(e.phase), kind: kindName(e.event), message: e.message });
  }
  // The library knows later versions than Webex renders; a card must not need them.
  if (adaptiveCard.version && adaptiveCard.version.compareTo(AC.Versions.v1_3) > 0) {
    events.push({
      phase: "Parse",
      kind: "UnsupportedCardVersion",
      message: `the card is version ${adaptiveCard.version}, Webex renders 1.3`,
    });
  }
  for (const e of adaptiveCard.validateProperties().validationEvents) {
    events.push({ phase: phaseName(e.phase), kind: kindName(e.event), message: e.message });
  }
  let rendered;
  try {
    rendered = adaptiveCard.render();
  } catch (error) {
    events.push({ phase: "Render", kind: "Exception", message: String(error) });
  }
  const host = document.getElementById("card");
  host.replaceChildren();
  if (rendered) {
    host.appendChild(rendered);
  } else {
    events.push({ phase: "Render", kind: "NothingRendered", message: "the card rendered nothing" });
  }
  return events;
}

// Runs in the page after layout: every element wider than the card, outside it, or cut off.
function measureInPage() {
  const host = document.getElementById("card");
  const box = host.getBoundingClientRect();
  const limit = host.clientWidth;
  const found = [];
  const describe = (el) => {
    const classes = [...el.classList].filter((c) => c.startsWith("ac-")).join(".");
    return el.tagName.toLowerCase() + (classes ? "." + classes : "");
  };
  for (const el of host.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue; // not shown (collapsed show card, hidden)
    const style = getComputedStyle(el);
    // A form control scrolls its own value inside its box by design; only its box must fit.
    const control = el.matches("input, textarea, select");
    const problems = [];
    if (r.right > box.right + 0.5 || r.left < box.left - 0.5) {
      problems.push(`sticks out of the card (${Math.round(r.left - box.left)}..` +
                    `${Math.round(r.right - box.left)} px of ${Math.round(box.width)})`);
    }
    if (!control && el.scrollWidth > limit + 0.5) {
      problems.push(`content is ${el.scrollWidth} px wide, the card ${limit} px`);
    } else if (!control && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 &&
               ["hidden", "clip", "auto", "scroll"].includes(style.overflowX)) {
      problems.push(`content cut off: ${el.scrollWidth} px in a ${el.clientWidth} px box`);
    }
    if (problems.length) found.push({ el, problems });
  }
  // Name the innermost culprits: an ancestor is listed only when none of its descendants are.
  const innermost = found.filter((f) => !found.some((g) => g !== f && f.el.contains(g.el)));
  return innermost.slice(0, 50).map(({ el, problems }) => ({
    element: describe(el),
    text: (el.innerText || el.value || "").replace(/\s+/g, " ").slice(0, 60),
    problems,
  }));
}

async function main() {
  const jobsFile = process.argv[2];
  if (!jobsFile) {
    console.error("usage: node render.mjs JOBS.json");
    return 2;
  }
  const spec = JSON.parse(readFileSync(jobsFile, "utf8"));
  const width = spec.width ?? 420;
  const browser = await chromium.launch({
    executablePath: spec.chromium ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--font-render-hinting=none"],
  });
  const results = [];
  try {
    const page = await browser.newPage({ viewport: { width: width + 40, height: 200 } });
    const pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    await page.setContent(pageHtml(width));
    await page.addScriptTag({ path: join(acDist, "adaptivecards.min.js") });
    for (const job of spec.jobs) {
      pageErrors.length = 0;
      const card = JSON.parse(readFileSync(job.card, "utf8"));
      const events = await page.evaluate(renderInPage, { card, hostConfig });
      await page.evaluate(() => document.fonts.ready);
      const overflow = await page.evaluate(measureInPage);
      for (const message of pageErrors) {
        events.push({ phase: "Render", kind: "PageError", message });
      }
      const frame = page.locator("#frame");
      const size = await frame.boundingBox();
      await frame.screenshot({ path: job.png });
      results.push({
        name: job.name,
        events,
        overflow,
        width: Math.round(size?.width ?? 0),
        height: Math.round(size?.height ?? 0),
      });
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(results) + "\n");
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`card rendering failed: ${error?.stack ?? error}`);
    process.exit(1);
  },
);
