#pragma once
// The character classes of ftfy 6.3.1's mojibake heuristics, transcribed from its source
// (ftfy/badness.py MOJIBAKE_CATEGORIES and ftfy/chardata.py UTF8_CLUES; ftfy is Apache-2.0,
// (c) Robyn Speer). These are ftfy's own hand-made lists, not Unicode properties, so they are
// written out here rather than generated. Eigen-free.

#include <cstdint>
#include <string_view>
#include <vector>

namespace clip::detail::ftfy {

// One bit per class a character belongs to.
enum ClassBit : std::uint32_t {
  kCommon = 1u << 0,
  kC1 = 1u << 1,
  kBad = 1u << 2,
  kLaw = 1u << 3,
  kCurrency = 1u << 4,
  kStartPunctuation = 1u << 5,
  kEndPunctuation = 1u << 6,
  kNumeric = 1u << 7,
  kKaomoji = 1u << 8,
  kUpperAccented = 1u << 9,
  kLowerAccented = 1u << 10,
  kUpperCommon = 1u << 11,
  kLowerCommon = 1u << 12,
  kBox = 1u << 13,
  // UTF8_CLUES, for UTF8_DETECTOR_RE (decode_inconsistent_utf8)
  kFirstOf2 = 1u << 14,
  kFirstOf3 = 1u << 15,
  kFirstOf4 = 1u << 16,
  kContinuation = 1u << 17,
  kContinuationStrict = 1u << 18,
};

struct ClassList {
  std::uint32_t bit;
  std::u32string_view members;
};

// Members of each class (ranges written out). Order and content as in ftfy 6.3.1.
inline constexpr ClassList kClassLists[] = {
    {kCommon, U"\u00A0\u00AD\u00B4\u00B7\u2013\u2014\u2015\u2019\u2026"},
    {kC1, U"\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008A\u008B\u008C\u008D\u008E\u008F"
          U"\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009A\u009B\u009C\u009D\u009E\u009F"},
    {kBad, U"¤¦¨ª¬¯¸ºƒˆˇ˘˛˜†‡‰⌐◊\uFFFD"},
    {kLaw, U"§¶"},
    {kCurrency, U"¢£¥₧€"},
    {kStartPunctuation, U"¡©«¿΄΅‘‚“„•‹\uF8FF"},
    {kEndPunctuation, U"®»˝”›™"},
    {kNumeric, U"±²³µ¹¼½¾×÷⁄№∂∆∏∑√∞∩∫≈≠≡≤≥"},
    {kKaomoji, U"°ÒÓÔÕÖÙÚÛÜòóôõöøùúûüŌŐŪŲ"},
    {kUpperAccented, U"ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑØÜÝĀĂĄĆČĎĐĒĖĘĚĞĢĪİĶĹĻĽŁŃŅŇŒŘŚŞŠŢŤŮŰŸŹŻŽҐ"},
    {kLowerAccented, U"ßàáâãäåæçèéêëìíîïðñüāăąćčďđēėęěğģīįķĺļľłœŕśşšťźżžґﬁﬂ"},
    // Greek capitals as the range Alpha..Omega, which includes the unassigned U+03A2
    {kUpperCommon, U"ÞΆΈΉΊΌΎΏΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡ\u03A2ΣΤΥΦΧΨΩΪΫЁЂЃЄЅІЇЈЉЊЋЌЍЎЏАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"},
    {kLowerCommon, U"άέήίΰαβγδεζηθικλμνξοπρςστυφχψωабвгдежзийклмнопрстуфхцчшщъыьэюяѐёђѓєѕіїјљњћќѝўџ"},
    {kBox, U"│┌┐┘├┤┬┼═║╒╓╔╕╖╗╘╙╚╛╜╝╞╟╠╡╢╣╤╥╦╧╨╩╪╫╬▀▄█▌▐░▒▓"},
    {kFirstOf2, U"ÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖ×ØÙÚÛÜÝÞßĀĂĆČĎĐĒĖĘĚĞĢĪİĶĹĻŁŃŅŇŌŐŘŚŞŠŢŪŮŰŲŹŻŽ"
                U"ΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩΪΫάέήίВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"},
    {kFirstOf3, U"àáâãäåæçèéêëìíîïāăąćčďēėęěģīįķĺļŕźΰαβγδεζηθικλμνξοабвгдежзийклмноп"},
    {kFirstOf4, U"ðóđğšπσру"},
    // U+0020 stands in for a lost U+00A0
    {kContinuation, U" \u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008A\u008B\u008C\u008D\u008E"
                    U"\u008F\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009A\u009B\u009C\u009D"
                    U"\u009E\u009F\u00A0¡¢£¤¥¦§¨©ª«¬\u00AD®¯°±²³´µ¶·¸¹º»¼½¾¿ÆØæøĄąĽľŁłŒœŖŗŚśŞşŠšŤťŸŹźŻżŽž"
                    U"ƒˆˇ˘˛˜˝΄΅ΆΈΉΊΌΎΏЁЂЃЄЅІЇЈЉЊЋЌЎЏёђѓєѕіїјљњћќўџҐґ–—―‘’‚“”„†‡•…‰‹›€№™"},
    {kContinuationStrict, U"\u0080\u0081\u0082\u0083\u0084\u0085\u0086\u0087\u0088\u0089\u008A\u008B\u008C\u008D"
                          U"\u008E\u008F\u0090\u0091\u0092\u0093\u0094\u0095\u0096\u0097\u0098\u0099\u009A\u009B"
                          U"\u009C\u009D\u009E\u009F\u00A0¡¢£¤¥¦§¨©ª«¬\u00AD®¯°±²³´µ¶·¸¹º»¼½¾¿ÆØæøĄąĽľŁłŒœŖŗŚśŞşŠšŤť"
                          U"ŸŹźŻżŽžƒˆˇ˘˛˜˝΄΅ΆΈΉΊΌΎΏЁЂЃЄЅІЇЈЉЊЋЌЎЏёђѓєѕіїјљњћќўџҐґ†‡‰‹›€№™"},
};

// Every member is below U+2600 except these four, looked up by hand.
inline constexpr char32_t kClassTableSize = 0x2600;

inline const std::vector<std::uint32_t>& class_table() {
  static const std::vector<std::uint32_t> table = [] {
    std::vector<std::uint32_t> t(kClassTableSize, 0);
    for (const ClassList& list : kClassLists)
      for (char32_t c : list.members)
        if (c < kClassTableSize) t[c] |= list.bit;
    return t;
  }();
  return table;
}

inline std::uint32_t classes_of(char32_t c) {
  if (c < kClassTableSize) return class_table()[c];
  switch (c) {
    case 0xF8FF: return kStartPunctuation;
    case 0xFB01:
    case 0xFB02: return kLowerAccented;
    case 0xFFFD: return kBad;
    default: return 0;
  }
}

}  // namespace clip::detail::ftfy
