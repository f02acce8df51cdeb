// i18n: English and Simplified Chinese. The language follows the browser unless the
// user picked one (kept in localStorage). Text is only ever set with textContent.
const dict = {
  en: {
    live: "LIVE", waiting: "Waiting for the host…", ended: "The live has ended", viewers: "viewers", viewer: "viewer",
    like: "Like", gifts: "Gifts", send: "Send", say: "Say something…", buy: "Buy", unmute: "Tap to unmute",
    danmaku: "Comments", density: "Density", messages: "Messages", service: "Customer service",
    reply: "Reply…", reconnecting: "Reconnecting…", connected: "Connected", error: "Error",
    goLive: "Go live", stop: "Stop", camera: "Camera", microphone: "Microphone", quality: "Quality",
    preview: "Preview", likes: "Likes", giftValue: "Gift value", bitrate: "Bitrate", loss: "Loss",
    chat: "Chat", mute: "Mute", ban: "Ban", delete: "Delete", pin: "Pin product", sku: "SKU",
    title: "Title", price: "Price", currency: "Currency", url: "Link", image: "Image URL", category: "Category",
    obs: "OBS / ffmpeg", whipUrl: "WHIP server URL", bearer: "Bearer token", rtspUrl: "RTSP URL (ffmpeg)",
    encoder: "Encoder: H.264, no B-frames, keyframe every 1–2 s, 2500 kbit/s; audio Opus",
    prompts: "Prompts", claim: "Claim", resolve: "Resolve", outcome: "Outcome", profile: "Profile",
    room: "Room", canned: "Canned replies", noPrompts: "No prompts yet",
    segments: "Segments", funnel: "Funnel", repurchase: "30-day repurchase", dmConversion: "DM conversion",
    dormant: "Dormant share", rules: "Rules", save: "Save", export: "Export CSV", liveRooms: "Live rooms",
    saved: "Saved", language: "Language", on: "On", off: "Off", tagChanges: "Tag changes",
    close: "Close", expired: "This link has expired: ask for a new one",
    lost: "The broadcast was lost: going live again…", guest: "Guest", me: "me",
    removed: "You can no longer write in this room", mutedUntil: "You are muted until",
    missedDMs: "Reconnected, but the list of conversations could not be read: a viewer who wrote while the console was disconnected is listed once they write again; their messages are in their conversation.",
  },
  zh: {
    live: "直播中", waiting: "等待主播开播…", ended: "直播已结束", viewers: "人观看", viewer: "人观看",
    like: "点赞", gifts: "礼物", send: "发送", say: "说点什么…", buy: "购买", unmute: "点击开启声音",
    danmaku: "弹幕", density: "密度", messages: "私信", service: "客服",
    reply: "回复…", reconnecting: "重新连接中…", connected: "已连接", error: "错误",
    goLive: "开始直播", stop: "结束", camera: "摄像头", microphone: "麦克风", quality: "画质",
    preview: "预览", likes: "点赞数", giftValue: "礼物价值", bitrate: "码率", loss: "丢包",
    chat: "聊天", mute: "禁言", ban: "封禁", delete: "删除", pin: "置顶商品", sku: "商品编号",
    title: "标题", price: "价格", currency: "币种", url: "链接", image: "图片地址", category: "类目",
    obs: "OBS / ffmpeg", whipUrl: "WHIP 服务器地址", bearer: "Bearer 令牌", rtspUrl: "RTSP 地址 (ffmpeg)",
    encoder: "编码：H.264，无 B 帧，关键帧间隔 1–2 秒，2500 kbit/s；音频 Opus",
    prompts: "待跟进", claim: "认领", resolve: "完成", outcome: "结果", profile: "用户画像",
    room: "直播间", canned: "快捷回复", noPrompts: "暂无提醒",
    segments: "用户分群", funnel: "转化漏斗", repurchase: "30 天复购率", dmConversion: "私信转化率",
    dormant: "沉睡占比", rules: "规则", save: "保存", export: "导出 CSV", liveRooms: "直播中的房间",
    saved: "已保存", language: "语言", on: "开", off: "关", tagChanges: "标签变化",
    close: "关闭", expired: "链接已过期，请重新获取",
    lost: "直播连接已断开，正在重新开播…", guest: "游客", me: "我",
    removed: "你已无法在此直播间发言", mutedUntil: "你已被禁言至",
    missedDMs: "已重新连接，但无法读取对话列表：断线期间发来私信的观众，要等他们再次发消息才会列在这里；他们的消息保存在各自的对话中。",
  },
};

let lang = localStorage.getItem("liveroom.lang") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

/** t returns the text for key in the current language. */
export function t(key) {
  return (dict[lang] && dict[lang][key]) || dict.en[key] || key;
}

export function currentLang() { return lang; }

/** apply fills every [data-i18n] element's text and [data-i18n-placeholder] placeholder. */
export function apply(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  root.querySelectorAll("[data-i18n-label]").forEach((el) => { el.setAttribute("aria-label", t(el.dataset.i18nLabel)); });
}

/** mountSwitch turns a <select> into the language switch. */
export function mountSwitch(select) {
  if (!select) return;
  select.replaceChildren();
  for (const [code, label] of [["en", "English"], ["zh", "简体中文"]]) {
    const o = document.createElement("option");
    o.value = code; o.textContent = label; o.selected = code === lang;
    select.append(o);
  }
  select.addEventListener("change", () => {
    lang = select.value;
    localStorage.setItem("liveroom.lang", lang);
    apply();
    document.dispatchEvent(new CustomEvent("langchange"));
  });
}

/** label names a user for people: its name, else "Guest" and a short tag of a guest id. */
export function label(u) {
  if (!u) return "";
  if (u.name) return u.name;
  const id = u.id || "";
  return id.startsWith("g_") ? `${t("guest")} ${id.slice(2, 6)}` : id;
}
