// Bootstraps the gallery in the standalone page served by `anomalymatch-astro label`.
const token = new URL(import.meta.url).searchParams.get("token") || "";
const { mount, httpTransport } = await import(`./gallery.js?token=${encodeURIComponent(token)}`);
const el = document.getElementById("app");
mount(el, httpTransport("/", token));
el.querySelector("[data-testid=amui-root]").focus();
