// Relais settings page. Forms post with fetch and the answer (the page's <main>) replaces it.
// Inside Shopify's admin every request carries a fresh App Bridge session token; outside it
// (a signed link) the form's own URL authenticates. Works without Shopify's CDN scripts.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var main = function () { return document.getElementById("main"); };

  async function headers() {
    var h = { "X-Relais-Fetch": "1", "X-Relais-Locale": document.documentElement.lang || "en" };
    if (window.shopify && typeof window.shopify.idToken === "function") {
      h.Authorization = "Bearer " + (await window.shopify.idToken());
    }
    return h;
  }

  function banner(tone, text) {
    var div = document.createElement("div");
    div.className = "banner banner-" + tone;
    div.setAttribute("role", "alert");
    var p = document.createElement("p");
    p.textContent = text;
    div.appendChild(p);
    main().prepend(div);
    div.scrollIntoView({ block: "nearest" });
  }

  function showProvider() {
    var select = document.getElementById("provider-select");
    if (!select) return;
    document.querySelectorAll(".provider-fields").forEach(function (set) {
      set.hidden = set.getAttribute("data-provider") !== select.value;
    });
  }

  async function submit(form, submitter) {
    var body = new FormData(form);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    form.setAttribute("aria-busy", "true");
    try {
      var response = await fetch(form.action, { method: "POST", body: body, headers: await headers() });
      if (response.headers.get("X-Relais-Partial") === "1") {
        main().innerHTML = await response.text();
        showProvider();
        var flash = document.getElementById("flash");
        if (flash) {
          if (window.shopify && window.shopify.toast) window.shopify.toast.show(flash.textContent.trim());
          flash.scrollIntoView({ block: "nearest" });
        }
        return;
      }
      var answer = {};
      try { answer = await response.json(); } catch (e) { /* not JSON: keep the generic message */ }
      banner("critical", answer.error || "Relais answered " + response.status + ": reload the page and try again.");
    } catch (e) {
      banner("critical", "Relais could not be reached: check your connection and try again.");
    } finally {
      form.removeAttribute("aria-busy");
    }
  }

  // Inside the admin a page of its own (an order, a search) is opened with a fresh session token
  // in its URL, as Shopify opens /app; with a signed link the URL already carries its proof.
  async function navigate(url) {
    if (window.shopify && typeof window.shopify.idToken === "function") {
      var target = new URL(url, window.location.href);
      target.searchParams.set("id_token", await window.shopify.idToken());
      url = target.toString();
    }
    window.location.assign(url);
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-nav]");
    if (!link || !(window.shopify && window.shopify.idToken)) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(link.href);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form[data-nav]") && window.shopify && window.shopify.idToken) {
      event.preventDefault();
      var target = new URL(form.action, window.location.href);
      new FormData(form).forEach(function (value, key) { if (value) target.searchParams.set(key, value); });
      navigate(target.toString());
      return;
    }
    if (!form.matches("form[data-fetch]")) return;
    event.preventDefault();
    var button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    submit(form, button);
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "provider-select") showProvider();
  });

  // Downloads inside the admin need the session token too: fetch, then save the blob.
  document.addEventListener("click", async function (event) {
    var link = event.target.closest("a[data-download]");
    if (!link || !(window.shopify && window.shopify.idToken)) return;
    event.preventDefault();
    var response = await fetch(link.href, { headers: await headers() });
    if (!response.ok) { banner("critical", "The download failed (" + response.status + ")."); return; }
    var url = URL.createObjectURL(await response.blob());
    var a = document.createElement("a");
    a.href = url;
    a.download = (response.headers.get("Content-Disposition") || "").split('filename="')[1]?.replace('"', "") || "export.json";
    a.click();
    URL.revokeObjectURL(url);
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showProvider);
  else showProvider();
})();
