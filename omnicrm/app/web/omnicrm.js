/*
 * omnicrm storefront script: shows the visitor's on-site offers (a popup, banners) and
 * recommendations, and reports impressions, clicks and product views back to omnicrm.
 * Plain JavaScript, no build step; it requests nothing but omnicrm's own endpoint.
 *
 * <script src="https://CRM/storefront/omnicrm.js" data-key="PUBLIC_KEY"
 *         data-token="SIGNED_CUSTOMER_TOKEN" data-product="SKU" defer></script>
 * <div data-omnicrm-recommendations></div>
 *
 * Through a Shopify App Proxy, load it from the proxy path (/apps/omnicrm/omnicrm.js)
 * without data-key: Shopify signs each request and names the signed-in customer.
 * docs/onsite.md has the installation for Shopify and EC-CUBE.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.omnicrmLoaded) {
    return;
  }
  window.omnicrmLoaded = true;
  var data = script.dataset;
  var base = data.endpoint || script.src.replace(/[^/?#]*(?:[?#].*)?$/, "");
  var STORE_KEY = "omnicrm_vid";
  var SESSION_KEY = "omnicrm_session";
  var root = document.documentElement;

  function randomId() {
    var bytes = new Uint8Array(18);
    window.crypto.getRandomValues(bytes);
    var text = "";
    for (var i = 0; i < bytes.length; i++) {
      text += String.fromCharCode(bytes[i]);
    }
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function readCookie(name) {
    var found = document.cookie.match(new RegExp("(?:^|; )" + name + "=([A-Za-z0-9_-]{16,64})"));
    return found ? found[1] : null;
  }

  // A first-party id, kept in the site's own storage and cookie (whichever survives).
  function visitorId() {
    var id = null;
    try {
      id = window.localStorage.getItem(STORE_KEY);
    } catch (e) {
      id = null;
    }
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) {
      id = readCookie(STORE_KEY) || randomId();
    }
    try {
      window.localStorage.setItem(STORE_KEY, id);
    } catch (e) {
      /* storage refused: the cookie still holds it */
    }
    document.cookie = STORE_KEY + "=" + id + "; path=/; max-age=31536000; SameSite=Lax";
    return id;
  }

  // A visit begins when this tab's session has no mark yet.
  function newVisit() {
    try {
      if (window.sessionStorage.getItem(SESSION_KEY)) {
        return false;
      }
      window.sessionStorage.setItem(SESSION_KEY, "1");
      return true;
    } catch (e) {
      return false;
    }
  }

  var visitor = visitorId();
  var product =
    data.product ||
    (document.querySelector("[data-omnicrm-product]") || { dataset: {} }).dataset.omnicrmProduct ||
    "";

  function query(extra) {
    var params = new URLSearchParams();
    if (data.key) {
      params.set("key", data.key);
    }
    if (data.token) {
      params.set("token", data.token);
    }
    params.set("visitor", visitor);
    Object.keys(extra).forEach(function (name) {
      if (extra[name] !== "" && extra[name] !== null && extra[name] !== undefined) {
        params.set(name, extra[name]);
      }
    });
    return params.toString();
  }

  // Reported as text/plain: a simple request, no preflight; keepalive outlives a click
  // that leaves the page.
  function report(events) {
    return fetch(base + "events?" + query({}), {
      method: "POST",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify({ visitor: visitor, events: events }),
      keepalive: true,
      credentials: "same-origin",
    }).catch(function () {
      /* a lost report costs a figure, never the page */
    });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function style() {
    var css =
      ".omnicrm-popup{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;" +
      "align-items:center;justify-content:center;z-index:2147483000}" +
      ".omnicrm-popup-box{background:#fff;color:#222;max-width:420px;width:90%;padding:24px;" +
      "border-radius:8px;text-align:center;font-size:15px;line-height:1.6;position:relative}" +
      ".omnicrm-popup-box img{max-width:100%;height:auto;margin-bottom:12px}" +
      ".omnicrm-close{position:absolute;top:6px;right:10px;border:0;background:none;" +
      "font-size:22px;cursor:pointer}" +
      ".omnicrm-coupon{display:inline-block;margin:10px 0;padding:4px 12px;border:1px dashed #c00;" +
      "font-weight:bold;letter-spacing:.1em}" +
      ".omnicrm-cta{display:inline-block;margin-top:8px;padding:8px 20px;background:#c00;" +
      "color:#fff;border:0;border-radius:4px;cursor:pointer;text-decoration:none}" +
      ".omnicrm-banner{display:flex;gap:12px;align-items:center;justify-content:center;" +
      "padding:8px 12px;background:#fff4e5;color:#222;font-size:14px}" +
      ".omnicrm-banner img{max-height:40px}" +
      ".omnicrm-recommendations{display:grid;grid-template-columns:repeat(auto-fill," +
      "minmax(140px,1fr));gap:12px;list-style:none;padding:0}" +
      ".omnicrm-recommendations img{width:100%;height:auto}";
    var node = element("style");
    node.textContent = css;
    document.head.appendChild(node);
  }

  function safeUrl(value) {
    return typeof value === "string" && /^(https?:\/\/|\/)/.test(value) ? value : null;
  }

  var customerName = "";

  function body(offer, container) {
    if (customerName) {
      container.appendChild(element("p", "omnicrm-greeting", customerName + " 様"));
    }
    var image = safeUrl(offer.image);
    if (image) {
      var img = element("img");
      img.src = image;
      img.alt = "";
      container.appendChild(img);
    }
    container.appendChild(element("p", "omnicrm-text", offer.text));
    if (offer.coupon) {
      container.appendChild(element("span", "omnicrm-coupon", offer.coupon));
    }
    var link = safeUrl(offer.link);
    var cta;
    if (link) {
      cta = element("a", "omnicrm-cta", "詳しく見る");
      cta.href = link;
    } else {
      cta = element("button", "omnicrm-cta", offer.coupon ? "クーポンをコピー" : "OK");
      cta.type = "button";
    }
    cta.addEventListener("click", function () {
      if (offer.coupon && !link && navigator.clipboard) {
        navigator.clipboard.writeText(offer.coupon).catch(function () {});
        cta.textContent = "コピーしました";
      }
      report([{ kind: "click", offer: offer.offer, variant: offer.variant }]);
    });
    container.appendChild(cta);
  }

  function showPopup(offer) {
    var overlay = element("div", "omnicrm-popup");
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-modal", "true");
    overlay.dataset.offer = offer.offer;
    overlay.dataset.variant = offer.variant;
    var box = element("div", "omnicrm-popup-box");
    var close = element("button", "omnicrm-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", "閉じる");
    close.addEventListener("click", function () {
      overlay.remove();
    });
    box.appendChild(close);
    body(offer, box);
    overlay.appendChild(box);
    overlay.addEventListener("click", function (event) {
      if (event.target === overlay) {
        overlay.remove();
      }
    });
    document.body.appendChild(overlay);
  }

  function showBanner(offer) {
    var banner = element("div", "omnicrm-banner");
    banner.dataset.offer = offer.offer;
    banner.dataset.variant = offer.variant;
    body(offer, banner);
    var slot = document.querySelector("[data-omnicrm-banner]");
    if (slot) {
      slot.appendChild(banner);
    } else {
      document.body.insertBefore(banner, document.body.firstChild);
    }
  }

  function price(item) {
    if (item.price === null || item.price === undefined) {
      return "";
    }
    try {
      return new Intl.NumberFormat("ja-JP", {
        style: "currency",
        currency: item.currency || "JPY",
      }).format(Number(item.price));
    } catch (e) {
      return item.price;
    }
  }

  function showRecommendations(items) {
    var slots = document.querySelectorAll("[data-omnicrm-recommendations]");
    if (!slots.length || !items.length) {
      return;
    }
    Array.prototype.forEach.call(slots, function (slot) {
      var list = element("ul", "omnicrm-recommendations");
      items.forEach(function (item) {
        var entry = element("li", "omnicrm-item");
        entry.dataset.product = item.product;
        var target = safeUrl(item.url);
        var holder = target ? element("a") : element("div");
        if (target) {
          holder.href = target;
          holder.addEventListener("click", function () {
            report([{ kind: "view", product: item.product }]);
          });
        }
        var image = safeUrl(item.image);
        if (image) {
          var img = element("img");
          img.src = image;
          img.alt = "";
          img.loading = "lazy";
          holder.appendChild(img);
        }
        holder.appendChild(element("span", "omnicrm-item-name", item.name));
        entry.appendChild(holder);
        entry.appendChild(element("span", "omnicrm-item-price", price(item)));
        list.appendChild(entry);
      });
      slot.appendChild(list);
    });
  }

  function run() {
    root.dataset.omnicrmState = "loading";
    var params = { visitor: visitor, page: window.location.pathname, product: product };
    if (newVisit()) {
      params.new_visit = "1";
    }
    fetch(base + "offers?" + query(params), { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("omnicrm: " + response.status);
        }
        return response.json();
      })
      .then(function (answer) {
        style();
        customerName = (answer.customer && answer.customer.first_name) || "";
        var shown = [];
        (answer.offers || []).forEach(function (offer) {
          if (offer.kind === "popup") {
            showPopup(offer);
          } else {
            showBanner(offer);
          }
          shown.push({ kind: "impression", offer: offer.offer, variant: offer.variant });
        });
        showRecommendations(answer.recommendations || []);
        var events = shown.slice();
        if (product) {
          events.push({ kind: "view", product: product });
        }
        var sent = events.length ? report(events) : Promise.resolve();
        return sent.then(function () {
          root.dataset.omnicrmState = "ready";
        });
      })
      .catch(function () {
        root.dataset.omnicrmState = "failed";
      });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
