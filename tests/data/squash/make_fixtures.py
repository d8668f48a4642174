# Makes the squash fixtures with Pillow 9.4 (Debian's python3-pil), as open_clip's
# resize_mode "squash" does it: Resize((S, S), BICUBIC) of the whole image, no crop.
# The inputs are patterns that tests/test_convert_formats.cpp draws with the same formula.
from PIL import Image

def pattern(width, height, mode):
    image = Image.new(mode, (width, height))
    channels = len(mode)
    for y in range(height):
        for x in range(width):
            values = tuple((x * 7 + y * 13 + c * 50 + (x * y) % 31) & 255 for c in range(channels))
            image.putpixel((x, y), values if channels > 1 else values[0])
    return image

for width, height, mode, size in [(97, 53, "RGB", 40), (31, 77, "L", 24)]:
    out = pattern(width, height, mode).resize((size, size), Image.BICUBIC).convert("RGB")
    out.save(f"pattern_{mode}_{width}x{height}_squash{size}.png")
