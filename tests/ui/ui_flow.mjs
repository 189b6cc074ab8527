// End-to-end test of berth's web UI in headless Chromium (Debian's `chromium` package),
// driven by playwright-core, which never downloads a browser of its own.
//
// Expects ENDPOINT and SEED (the JSON seed.py printed). Prints "PASS: ..." / "FAIL: ..." per
// check and "CHECKS passed=N failed=M" last; exits non-zero when a check failed. With
// UI_SCREENSHOTS=<dir>, also writes PNG screenshots of the main pages there.
import { chromium } from "playwright-core";

const ENDPOINT = process.env.ENDPOINT;
const SEED = JSON.parse(process.env.SEED);
const SHOTS = process.env.UI_SCREENSHOTS || "";
const BROWSER = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_MS = 20000;

let passed = 0;
let failed = 0;
function check(ok, what, detail = "") {
  if (ok) {
    passed++;
    console.log(`PASS: ${what}`);
  } else {
    failed++;
    console.log(`FAIL: ${what}${detail ? ` (${detail})` : ""}`);
  }
}

async function shot(page, name, fullPage = false) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage });
}

async function signInWithKey(page, id) {
  await page.goto(`${ENDPOINT}/ui/`);
  await page.fill("#access_key_id", id);
  await page.fill("#secret_access_key", `${id}-secret`);
  await Promise.all([page.waitForURL(/\/ui\/$/), page.click("text=Sign in with access key")]);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: BROWSER,
    headless: true,
    // Root in CI containers: Chromium's sandbox needs user namespaces it may not have.
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    timeout: STEP_MS,
  });
  try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 820 } });
    ctx.setDefaultTimeout(STEP_MS);
    const page = await ctx.newPage();

    // Signed out: the UI sends the browser to the sign-in page.
    await page.goto(`${ENDPOINT}/ui/`);
    check(page.url().includes("/ui/login"), "signed out, /ui/ leads to the sign-in page", page.url());
    await shot(page, "ui-login");

    // A wrong secret is refused on the page.
    await page.fill("#access_key_id", "AKIDADMIN");
    await page.fill("#secret_access_key", "not-the-secret");
    await page.click("text=Sign in with access key");
    check(
      (await page.locator(".notice").innerText()).includes("not right"),
      "a wrong secret is refused",
    );

    await signInWithKey(page, "AKIDADMIN");
    const names = await page.locator("tbody tr td:first-child").allInnerTexts();
    check(
      JSON.stringify(names) ===
        JSON.stringify(["team-a/web", "team-a/worker", "team-b/secret", "tools/builder"]),
      "the admin sees every repository",
      JSON.stringify(names),
    );
    const cookies = await ctx.cookies();
    const session = cookies.find((c) => c.name === "berth_ui");
    check(
      session && session.httpOnly && session.sameSite === "Strict",
      "the session cookie is HttpOnly and SameSite=Strict",
      JSON.stringify(session),
    );
    check(
      (await page.evaluate(() => document.cookie)) === "",
      "page scripts cannot read the session cookie",
    );
    // Sizes are the maintained figures: each repository's blobs, once, and its manifests.
    const listed = await page.$$eval("tbody tr", (trs) =>
      Object.fromEntries(
        trs.map((tr) => [tr.querySelector("td").innerText, Number(tr.querySelector("td.size").dataset.bytes)]),
      ),
    );
    check(
      ["team-a/web", "team-a/worker", "team-b/secret"].every((r) => listed[r] === SEED.bytes[r]),
      "each repository's size counts its blobs once and its manifests",
      `${JSON.stringify(listed)} vs ${JSON.stringify(SEED.bytes)}`,
    );
    check(
      (await page.locator("#size-means").innerText()).includes("each once"),
      "the page says what the size counts",
    );
    check(
      (await page.locator("#region").inputValue()) === "us-east-1",
      "the header's region picker shows the default region",
    );
    await shot(page, "ui-repositories");

    // Search by prefix.
    await page.fill("input[name=q]", "team-a/");
    await page.press("input[name=q]", "Enter");
    await page.waitForURL(/q=team-a/);
    const found = await page.locator("tbody tr td:first-child").allInnerTexts();
    check(
      JSON.stringify(found) === JSON.stringify(["team-a/web", "team-a/worker"]),
      "searching team-a/ lists team-a's repositories only",
      JSON.stringify(found),
    );

    // A repository: its images, the index with each platform.
    await page.click("text=team-a/web");
    await page.waitForURL(/\/ui\/r\/team-a\/web$/);
    const rows = page.locator("tbody tr");
    check((await rows.count()) === 3, "team-a/web lists its three images", String(await rows.count()));
    const body = await page.locator("main").innerText();
    check(
      body.includes("linux/amd64") && body.includes("linux/arm64/v8") && body.includes("OCI index"),
      "the images show their platforms, the index each of its own",
    );
    // The pulled image shows its last recorded pull time; every image here is active.
    const pulledRow = page.locator("tbody tr", { hasText: "1.0" }).filter({ hasNotText: "arm64" });
    check(
      (await pulledRow.locator("td.pull .pulled").count()) === 1 &&
        /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/.test(await pulledRow.locator("td.pull").innerText()),
      "team-a/web:1.0 shows its last recorded pull time",
      await pulledRow.locator("td.pull").innerText(),
    );
    const statuses = await page.$$eval("tbody tr [data-status]", (s) => s.map((x) => x.dataset.status));
    check(
      JSON.stringify(statuses) === JSON.stringify(["ACTIVE", "ACTIVE", "ACTIVE"]),
      "team-a/web's images are all active",
      JSON.stringify(statuses),
    );
    await shot(page, "ui-repository");

    // The image tagged 1.0: its layers are those pushed, in order, with their sizes.
    await page.locator("tbody tr", { hasText: "1.0" }).filter({ hasNotText: "arm64" }).locator("a").first().click();
    await page.waitForURL(/\/-\/image\//);
    check(page.url().includes(SEED.digest), "the 1.0 row opens its image", page.url());
    const layers = await page.$$eval("#layers tr.layer", (trs) =>
      trs.map((tr) => ({
        digest: tr.querySelector("code.digest").textContent,
        size: Number(tr.querySelector("td.size").dataset.bytes),
      })),
    );
    const want = SEED.layers.map((l) => ({ digest: l.digest, size: l.size }));
    check(
      JSON.stringify(layers) === JSON.stringify(want),
      "the image's layer list matches what was pushed",
      `${JSON.stringify(layers)} vs ${JSON.stringify(want)}`,
    );
    const pull = await page.locator(".copy code").first().innerText();
    const port = new URL(ENDPOINT).port;
    const hostIn = (region) => `000000000000.dkr.ecr.${region}.localhost:${port}`;
    check(
      pull === `docker pull ${hostIn("us-east-1")}/team-a/web:1.0`,
      "the pull command names this region's registry",
      pull,
    );
    check(
      (await page.locator("#image-pulled").innerText()).endsWith("UTC") &&
        (await page.locator("#image-status").innerText()) === "Active",
      "the image page shows its status and last pull",
    );
    await shot(page, "ui-image", true);

    // The archived worker image: listed as archived, and its page says it cannot be pulled.
    await page.goto(`${ENDPOINT}/ui/r/team-a/worker`);
    const archivedRow = page.locator(`tbody tr[data-digest="${SEED.archived}"]`);
    check(
      (await archivedRow.locator("[data-status]").getAttribute("data-status")) === "ARCHIVED" &&
        (await archivedRow.innerText()).includes("Archived 20"),
      "the archived image is listed as archived, with when",
      await archivedRow.innerText(),
    );
    check(
      (await page.locator('tbody tr [data-status="ACTIVE"]').count()) === 1,
      "the newer worker image is active",
    );
    await archivedRow.locator("a").first().click();
    await page.waitForURL(/\/-\/image\//);
    const notice = await page.locator("#archived-notice").innerText();
    check(
      notice.includes("This image is archived") && notice.includes("cannot be pulled until it is restored"),
      "the archived image's page says it cannot be pulled until restored",
      notice,
    );
    check(
      (await page.locator(".copy code").first().innerText()).includes("--target-storage-class STANDARD") &&
        !(await page.locator("main").innerText()).includes("docker pull"),
      "it offers the restore command and no pull command",
    );
    await shot(page, "ui-archived");

    // Another region, picked in the header: its own repositories and registry host.
    await page.goto(`${ENDPOINT}/ui/`);
    await Promise.all([page.waitForURL(/region=eu-west-1/), page.selectOption("#region", "eu-west-1")]);
    const euNames = await page.locator("tbody tr td:first-child").allInnerTexts();
    check(
      JSON.stringify(euNames) === JSON.stringify(["eu/api"]),
      "picking eu-west-1 lists that region's repositories",
      JSON.stringify(euNames),
    );
    check(
      (await page.locator("#current-region").innerText()) === "eu-west-1",
      "the page names the region it shows",
    );
    await page.click("text=eu/api");
    await page.waitForURL(/\/ui\/r\/eu\/api\?region=eu-west-1$/);
    await page.locator("tbody tr a").first().click();
    await page.waitForURL(/\/-\/image\/.*region=eu-west-1/);
    const euPull = await page.locator(".copy code").first().innerText();
    check(
      euPull === `docker pull ${hostIn("eu-west-1")}/eu/api:3.0`,
      "pull commands in eu-west-1 name eu-west-1's registry",
      euPull,
    );
    await page.goto(`${ENDPOINT}/ui/`);

    // Policies, read-only.
    await page.goto(`${ENDPOINT}/ui/r/team-a/web?tab=policies`);
    check(
      (await page.locator("main").innerText()).includes("Keep the last 30 images"),
      "the lifecycle policy is shown",
    );

    // Dark mode follows the system setting.
    const dark = await browser.newContext({
      viewport: { width: 1280, height: 820 },
      colorScheme: "dark",
      storageState: await ctx.storageState(),
    });
    const dpage = await dark.newPage();
    await dpage.goto(`${ENDPOINT}/ui/r/team-a/web`);
    const bg = await dpage.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(bg === "rgb(15, 18, 23)", "prefers-color-scheme: dark gives the dark palette", bg);
    await shot(dpage, "ui-repository-dark");
    await dark.close();

    // Sign out.
    await page.click("text=Sign out");
    await page.waitForURL(/\/ui\/login/);
    await page.goto(`${ENDPOINT}/ui/`);
    check(page.url().includes("/ui/login"), "after signing out, the UI asks to sign in again");
    await ctx.close();

    // The reader, signed in with a registry token: team-a only.
    const rctx = await browser.newContext({ viewport: { width: 1280, height: 820 } });
    rctx.setDefaultTimeout(STEP_MS);
    const r = await rctx.newPage();
    await r.goto(`${ENDPOINT}/ui/login`);
    await r.fill("#token", SEED.reader_token);
    await r.click("text=Sign in with token");
    await r.waitForLoadState();
    check(
      (await r.locator("main").innerText()).includes("You may not list repositories"),
      "the reader may not list every repository",
    );
    const refused = await r.goto(`${ENDPOINT}/ui/r/team-b/secret`);
    const text = await r.locator("main").innerText();
    check(refused.status() === 403 && text.includes("Access denied"), "the reader is refused team-b/secret", String(refused.status()));
    check(
      !text.includes("classified") && !text.includes(SEED.secret.slice(7, 19)),
      "the refusal shows nothing team-b/secret holds",
    );
    await shot(r, "ui-refused");
    const allowed = await r.goto(`${ENDPOINT}/ui/r/team-a/web`);
    check(allowed.status() === 200, "the reader reads team-a/web", String(allowed.status()));
    const elsewhere = await r.goto(`${ENDPOINT}/ui/r/team-a/web?region=eu-west-1`);
    check(
      elsewhere.status() === 404 && (await r.locator("main").innerText()).includes("that region only"),
      "a token's session stays in the token's region",
      String(elsewhere.status()),
    );
    await rctx.close();
  } finally {
    await browser.close();
  }
}

const deadline = setTimeout(() => {
  console.log("FAIL: the UI flow did not finish within 180 s");
  console.log(`CHECKS passed=${passed} failed=${failed + 1}`);
  process.exit(1);
}, 180000);
try {
  await main();
} catch (e) {
  check(false, "the UI flow ran to the end", String(e && e.stack ? e.stack : e));
}
clearTimeout(deadline);
console.log(`CHECKS passed=${passed} failed=${failed}`);
process.exit(failed === 0 ? 0 : 1);
